"""Stages ``compress``, ``export`` and ``measure``: from retrained models to measured deployable files.

``compress`` runs the config's recipe on each retrained model (its report holds accuracy, size and
latency per compression stage). ``export`` writes each model's deployable ONNX file (the compressed
one, else the FP32 export) plus its FP32 export, and the references' FP32 exports, each checked
to load and run in ONNX Runtime. ``measure`` re-measures every exported file on every measured
device, interleaved so that a change of load slows them alike, and keeps each figure's conditions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from slimforge.runs._context import RunContext, StageError
from slimforge.runs.layout import model_dir

__all__ = ["run_compress_stage", "run_export_stage", "run_measure_stage"]


def _no_recipe(recipe: str) -> bool:
    return recipe.strip().lower() in ("", "none")


def run_compress_stage(ctx: RunContext) -> dict[str, Any]:
    """Compress each retrained model by the config's recipe (skipped when the recipe is ``none``)."""
    from slimforge.compress import compress

    cfg = ctx.config.compress
    models = []
    for m in ctx.outputs("retrain")["models"]:
        if _no_recipe(cfg.recipe):
            models.append({"name": m["name"], "dir": None, "report": None})
            continue
        out = model_dir(ctx.run_dir, m["name"]) / "compressed"
        report = out / "compression.json"
        if not report.is_file():
            ctx.log(f"  compressing {m['name']}: {cfg.recipe}")
            compress(
                str(ctx.path(m["dir"])),
                ctx.splits,
                cfg.recipe,
                out,
                finetune_epochs=cfg.finetune_epochs,
                max_accuracy_drop=cfg.max_accuracy_drop,
                calibration_images=cfg.calibration_images,
                seed=ctx.config.seed,
                latency_time_cap_s=ctx.config.measure.time_cap_s,
                overwrite=True,
                progress=ctx.progress,
            )
        models.append({"name": m["name"], "dir": ctx.rel(out), "report": ctx.rel(report)})
    return {"models": models, "recipe": cfg.recipe}


def _export_fp32(ctx: RunContext, trained_dir: Path, path: Path) -> None:
    from slimforge.hardware import export_onnx
    from slimforge.runs.model_io import load_model

    if path.is_file():
        return
    tmp = path.with_name(f".{path.name}.partial")
    export_onnx(load_model(trained_dir), ctx.input_shape, tmp)
    tmp.replace(path)


def _check_runs(path: Path, shape: tuple[int, ...]) -> None:
    """Load ``path`` in ONNX Runtime and run one input: an export that does not run fails here."""
    import numpy as np
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        session.run(None, {name: np.zeros(shape, dtype=np.float32)})
    except Exception as exc:  # noqa: BLE001 - any runtime failure is a failed export
        raise StageError(f"exported model {path} does not run in ONNX Runtime: {exc}") from None


def run_export_stage(ctx: RunContext) -> dict[str, Any]:
    """Write ``models/<name>/model.onnx`` (deployable) and ``fp32.onnx`` for every model and reference."""
    compressed = {m["name"]: m for m in ctx.outputs("compress")["models"]}
    retrain = ctx.outputs("retrain")
    models = []
    for m in retrain["models"]:
        base = model_dir(ctx.run_dir, m["name"])
        fp32 = base / "fp32.onnx"
        _export_fp32(ctx, ctx.path(m["dir"]), fp32)
        deployable = base / "model.onnx"
        c = compressed.get(m["name"], {})
        source = ctx.path(c["dir"]) / "model.onnx" if c.get("dir") else fp32
        if not source.is_file():
            raise StageError(f"{source} is missing; remove {ctx.rel(base)} and run again to redo this model")
        tmp = deployable.with_name(".model.onnx.partial")
        shutil.copyfile(source, tmp)
        tmp.replace(deployable)
        for path in (fp32, deployable):
            _check_runs(path, ctx.input_shape)
        models.append(
            {
                "name": m["name"],
                "onnx": ctx.rel(deployable),
                "bytes": deployable.stat().st_size,
                "fp32_onnx": ctx.rel(fp32),
                "fp32_bytes": fp32.stat().st_size,
                "compressed": bool(c.get("dir")),
            }
        )
    references = []
    for r in retrain.get("reference", []):
        fp32 = model_dir(ctx.run_dir, r["name"]) / "fp32.onnx"
        _export_fp32(ctx, ctx.path(r["dir"]), fp32)
        _check_runs(fp32, ctx.input_shape)
        references.append({"name": r["name"], "onnx": ctx.rel(fp32), "bytes": fp32.stat().st_size})
    return {"models": models, "reference": references}


def run_measure_stage(ctx: RunContext) -> dict[str, Any]:
    """Measure every exported model on every device (cached in the run store under its conditions)."""
    from slimforge.hardware.latency import LatencyProtocol
    from slimforge.runs._stage_search import make_device

    exported = ctx.outputs("export")
    retrain = ctx.outputs("retrain")
    accuracy = {r["name"]: r.get("accuracy_pct") for r in retrain.get("reference", [])}
    protocol = LatencyProtocol(time_cap_s=ctx.config.measure.time_cap_s)
    models, references = [], []
    for device in ctx.config.devices:
        dev = make_device(device)
        if not dev.cacheable:  # a table device answers for architectures, not for files
            for m in retrain["models"]:
                result = dev.measure(m["arch"])
                models.append({"name": m["name"], "device": device.name, "form": "architecture",
                               "measurement": result.to_dict()})
            continue
        files = [(m["name"], "deployable", ctx.path(m["onnx"])) for m in exported["models"]]
        files += [(m["name"], "fp32", ctx.path(m["fp32_onnx"])) for m in exported["models"]]
        files += [(r["name"], "fp32", ctx.path(r["onnx"])) for r in exported.get("reference", [])]
        ctx.log(f"  measuring {len(files)} model file(s) on {device.spec}")
        results = dev.measure_many(
            [str(f) for _, _, f in files],
            ctx.input_shape,
            threads=ctx.config.measure.threads,
            protocol=protocol,
            seed=ctx.config.seed,
            store=ctx.store,
            progress=ctx.progress,
        )
        reference_names = {r["name"] for r in exported.get("reference", [])}
        for (name, form, _), result in zip(files, results):
            row = {"name": name, "device": device.name, "form": form, "measurement": result.to_dict()}
            if name in reference_names:
                ref = next(r for r in retrain["reference"] if r["name"] == name)
                references.append({**row, "width": ref["width"], "model": ref["model"],
                                   "accuracy_pct": accuracy.get(name)})
            else:
                models.append(row)
    return {"models": models, "reference": references}
