"""Stage ``export``: every model's deployable ONNX file and its FP32 export, and the references'.

``models/<name>/model.onnx`` is what ships (the recipe's kept model: INT8 when the gate kept
quantization), ``fp32.onnx`` its FP32 export, ``pytorch/`` a reloadable state_dict directory. The
references get an FP32 export, and an INT8 one by the same post-training quantizer when the
run's recipe quantizes, so the summary compares deployed with deployed. Every file is checked to
run in ONNX Runtime and its top-1 accuracy is measured on the test split here.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slimforge.io import atomic_path
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._outputs import ExportedFormat, ExportedModel, ExportedReference, ExportOutput
from slimforge.runs._stage import RunStage
from slimforge.runs.config import EXPORT_FORMATS, ConfigError, RunConfig
from slimforge.runs.layout import model_dir, reference_dir

__all__ = ["ExportStage", "recipe_quantizes"]


def recipe_quantizes(recipe: str) -> bool:
    """Whether ``recipe`` ends in a stage that writes an INT8 file (``quantize:int8`` / ``quantize:qat``)."""
    if recipe.strip().lower() in ("", "none"):
        return False
    from slimforge.compress import parse_stages

    return any(stage.final for stage in parse_stages(recipe))


def _export_fp32(model_path: Path, shape: tuple[int, ...], path: Path) -> None:
    from slimforge.hardware import export_onnx
    from slimforge.io import load_model

    if path.is_file():
        return
    with atomic_path(path, suffix=".onnx") as tmp:
        export_onnx(load_model(model_path), shape, tmp)


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


def _accuracy(path: Path, ctx: RunContext) -> float:
    """Test top-1 (%) of an exported file in ONNX Runtime; a file that does not run fails the stage."""
    from slimforge.training import onnx_accuracy

    split = ctx.splits.test if ctx.splits.test is not None else ctx.splits.val
    try:
        return onnx_accuracy(path, split, threads=ctx.threads)
    except Exception as exc:  # noqa: BLE001 - any runtime failure is a failed export
        raise StageError(f"exported model {path} does not run in ONNX Runtime: {exc}") from None


def _convert(ctx: RunContext, model_dir: Path, fmt: str, out: Path, precision: str) -> ExportedFormat:
    """The deployed model in ``fmt`` (at its deployed precision), checked; a failure is recorded, not raised."""
    from slimforge.errors import SlimforgeError
    from slimforge.hardware.export import EXPORT_RECORD, ExportResult, export_model
    from slimforge.io import load_model

    record = out / EXPORT_RECORD
    if record.is_file():
        result = ExportResult.from_json(record.read_text(encoding="utf-8"))
    else:
        ctx.log(f"  exporting {model_dir.parent.name} as {fmt} ({precision})")
        try:
            result = export_model(load_model(model_dir), fmt, out, input_shape=ctx.input_shape, precision=precision,
                                  data=ctx.splits, threads=ctx.threads, seed=ctx.config.seed)
        except SlimforgeError as exc:
            return ExportedFormat(fmt, precision, None, None, None, None, False, note=str(exc))
    return ExportedFormat(fmt, result.precision, ctx.rel(out / Path(result.path).name), result.size_bytes,
                          result.top1_agreement_pct, result.max_abs_diff, result.checked, result.note)


def _precision(path: Path) -> str:
    import onnx

    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return "int8" if ops & {"QuantizeLinear", "QLinearConv", "ConvInteger"} else "fp32"


class ExportStage(RunStage):
    """Write the deployable and FP32 files of every model, and the references' exports."""

    name = "export"
    output = ExportOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("retrain", "compress", "reference")

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {"export": asdict(config.export), "reference_int8": recipe_quantizes(config.compress.recipe),
                "calibration_images": config.compress.calibration_images, "seed": config.seed}

    def check(self, config: RunConfig) -> None:
        for i, fmt in enumerate(config.export.formats):
            if fmt not in EXPORT_FORMATS:
                raise ConfigError(f"export.formats[{i}] {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")

    def artifacts(self, ctx: RunContext) -> list[Path]:
        names = ("model.onnx", "fp32.onnx", "auto.onnx", "pytorch", *(f for f in EXPORT_FORMATS if f not in ("onnx", "pytorch")))
        out = [p for name in names for p in ctx.path("models").glob(f"*/{name}")]
        out += [p for name in ("fp32.onnx", "int8.onnx") for p in ctx.path("references").glob(f"*/{name}")]
        return sorted(out)

    def _run(self, ctx: RunContext) -> ExportOutput:
        compressed = {m.name: m for m in ctx.output("compress").models}
        models = [self._model(ctx, m, compressed.get(m.name)) for m in ctx.output("retrain").models]
        int8 = recipe_quantizes(ctx.config.compress.recipe)
        references = [self._reference(ctx, r, int8) for r in ctx.output("reference").models]
        return ExportOutput(tuple(models), tuple(references))

    def _model(self, ctx: RunContext, m: Any, c: Any) -> ExportedModel:
        base = model_dir(ctx.run_dir, m.name)
        fp32 = base / "fp32.onnx"
        _export_fp32(ctx.path(m.dir), ctx.input_shape, fp32)
        if c is not None and c.dir:  # the recipe's kept model (INT8 when the gate kept it)
            source, model = ctx.path(c.dir) / "model.onnx", ctx.path(c.dir) / "model"
        elif c is not None and c.auto:  # the searched policy's finetuned model, exported as it is
            model = ctx.path(c.source)
            source = base / "auto.onnx"
            _export_fp32(model, ctx.input_shape, source)
        else:
            source, model = fp32, ctx.path(m.dir)
        if not source.is_file():
            raise StageError(f"{source} is missing; remove {ctx.rel(base)} and run again to redo this model")
        deployable = base / "model.onnx"
        with atomic_path(deployable, suffix=".onnx") as tmp:
            shutil.copyfile(source, tmp)
        _accuracy(fp32, ctx)  # the FP32 export must run too
        pytorch = None
        if "pytorch" in ctx.config.export.formats:
            pytorch = ctx.rel(_copy_model(model, base / "pytorch"))
        precision = _precision(deployable)
        formats = tuple(
            _convert(ctx, model, fmt, base / fmt, precision)
            for fmt in ctx.config.export.formats if fmt not in ("onnx", "pytorch")
        )
        return ExportedModel(
            name=m.name,
            onnx=ctx.rel(deployable),
            bytes=deployable.stat().st_size,
            fp32_onnx=ctx.rel(fp32),
            fp32_bytes=fp32.stat().st_size,
            precision=precision,
            compressed=bool(c is not None and (c.dir or c.auto)),
            accuracy_pct=_accuracy(deployable, ctx),
            pytorch=pytorch,
            formats=formats,
            model_dir=ctx.rel(model),
        )

    def _reference(self, ctx: RunContext, r: Any, int8: bool) -> ExportedReference:
        base = reference_dir(ctx.run_dir, r.name)
        fp32 = base / "fp32.onnx"
        _export_fp32(ctx.path(r.dir), ctx.input_shape, fp32)
        out = ExportedReference(r.name, ctx.rel(fp32), fp32.stat().st_size, _accuracy(fp32, ctx))
        if not int8:
            return out
        from slimforge.compress import quantize_onnx_int8
        from slimforge.data import calibration_batch

        path = base / "int8.onnx"
        if not path.is_file():
            n = min(ctx.config.compress.calibration_images, len(ctx.splits.train))
            calib = calibration_batch(ctx.splits.train, n, seed=ctx.config.seed).numpy()
            with atomic_path(path, suffix=".onnx") as tmp:
                quantize_onnx_int8(fp32, tmp, calib)
        return ExportedReference(
            **{**out.to_dict(), "int8_onnx": ctx.rel(path), "int8_bytes": path.stat().st_size,
               "int8_accuracy_pct": _accuracy(path, ctx)}
        )
