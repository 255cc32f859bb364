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


#: ``compress.auto`` -> (function name in slimforge.compress, the JSON file it writes).
_AUTO = {"prune": ("auto_prune", "auto_prune.json"), "bits": ("auto_bits", "auto_bits.json")}


def _auto_policy(ctx: RunContext, name: str, source: Path) -> tuple[Path, dict[str, Any]]:
    """Search a per-layer policy for one model (once); returns the finetuned model and the record."""
    import slimforge.compress as compress_api

    cfg = ctx.config.compress
    function, result_file = _AUTO[cfg.auto]
    options: dict[str, Any] = {"estimate": compress_api.EstimateConfig(recal_images=ctx.config.accuracy.bn_images)}
    if cfg.auto == "prune":
        options["latency_time_cap_s"] = ctx.config.measure.time_cap_s
    out = model_dir(ctx.run_dir, name) / "auto"
    if not (out / result_file).is_file():
        ctx.log(f"  searching a per-layer {cfg.auto} policy for {name} under {cfg.budget}")
        getattr(compress_api, function)(
            str(source),
            ctx.splits,
            cfg.budget,
            out,
            search_budget=cfg.search_budget,
            seed=ctx.config.seed,
            finetune_epochs=cfg.finetune_epochs,
            overwrite=True,
            progress=ctx.progress,
            **options,
        )
    return out / "searched", {"kind": cfg.auto, "budget": cfg.budget, "dir": ctx.rel(out),
                              "result": ctx.rel(out / result_file)}


def run_compress_stage(ctx: RunContext) -> dict[str, Any]:
    """Compress each retrained model: the searched policy (``compress.auto``), then the recipe."""
    from slimforge.compress import compress

    cfg = ctx.config.compress
    models = []
    for m in ctx.outputs("retrain")["models"]:
        source, auto = ctx.path(m["dir"]), None
        if cfg.auto is not None:
            source, auto = _auto_policy(ctx, m["name"], source)
        entry = {"name": m["name"], "dir": None, "report": None, "auto": auto, "source": ctx.rel(source)}
        if not _no_recipe(cfg.recipe):
            out = model_dir(ctx.run_dir, m["name"]) / "compressed"
            report = out / "compression.json"
            if not report.is_file():
                ctx.log(f"  compressing {m['name']}: {cfg.recipe}")
                compress(
                    str(source),
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
            entry.update(dir=ctx.rel(out), report=ctx.rel(report))
        models.append(entry)
    return {"models": models, "recipe": cfg.recipe, "auto": cfg.auto, "budget": cfg.budget}


def _export_fp32(ctx: RunContext, trained_dir: Path, path: Path) -> None:
    from slimforge.hardware import export_onnx
    from slimforge.runs.model_io import load_model

    if path.is_file():
        return
    tmp = path.with_name(f".{path.name}.partial")
    export_onnx(load_model(trained_dir), ctx.input_shape, tmp)
    tmp.replace(path)


def _copy_model(model: Path, out: Path) -> Path:
    """Copy a saved model directory (``model.json`` + ``model.pt``) whole to ``out``."""
    if not (model / "model.json").is_file():
        raise StageError(f"{model} is not a saved model (no model.json); remove it and run again")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model, tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out


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
        if c.get("dir"):  # the recipe's kept model (INT8 when it quantized)
            source, model = ctx.path(c["dir"]) / "model.onnx", ctx.path(c["dir"]) / "model"
        elif c.get("auto"):  # the searched policy's finetuned model, exported as it is
            model = ctx.path(c["source"])
            source = base / "auto.onnx"
            _export_fp32(ctx, model, source)
        else:
            source, model = fp32, ctx.path(m["dir"])
        if not source.is_file():
            raise StageError(f"{source} is missing; remove {ctx.rel(base)} and run again to redo this model")
        tmp = deployable.with_name(".model.onnx.partial")
        shutil.copyfile(source, tmp)
        tmp.replace(deployable)
        for path in (fp32, deployable):
            _check_runs(path, ctx.input_shape)
        row = {
            "name": m["name"],
            "onnx": ctx.rel(deployable),
            "bytes": deployable.stat().st_size,
            "fp32_onnx": ctx.rel(fp32),
            "fp32_bytes": fp32.stat().st_size,
            "compressed": bool(c.get("dir") or c.get("auto")),
        }
        if "pytorch" in ctx.config.export.formats:
            row["pytorch"] = ctx.rel(_copy_model(model, base / "pytorch"))
        models.append(row)
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
