"""``export_model``: convert, run the converted file on real images, compare, and move it into place."""

from __future__ import annotations

import datetime
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.hardware.export._base import PRECISIONS, Converted, ExportError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.io import JsonRecord, atomic_write_json
from slimforge.nn import evaluating
from slimforge.registry import Registry

__all__ = [
    "DEFAULT_MIN_AGREEMENT_PCT",
    "EXPORTERS",
    "EXPORT_RECORD",
    "ExportResult",
    "convert_model",
    "export_model",
]

#: the format registry (``--format``).
EXPORTERS: Registry[Any] = Registry("export format")
EXPORTERS.register("onnx", "slimforge.hardware.export._formats:OnnxExporter")
EXPORTERS.register("torchscript", "slimforge.hardware.export._formats:TorchScriptExporter")
EXPORTERS.register("tflite", "slimforge.hardware.export._formats:LiteRtExporter")
EXPORTERS.register("openvino", "slimforge.hardware.export._formats:OpenVinoExporter")
EXPORTERS.register("executorch", "slimforge.hardware.export._formats:ExecuTorchExporter")
EXPORTERS.register("rknn", "slimforge.hardware.export._rknn:RknnExporter")

#: the least top-1 agreement with the reference an export must reach, by precision (percent).
DEFAULT_MIN_AGREEMENT_PCT = {"fp32": 99.0, "int8": 90.0}
#: the record written beside the exported files.
EXPORT_RECORD = "export.json"
#: check images drawn when no data is given (seeded normal noise, stated in the result).
_RANDOM_CHECK_IMAGES = 64


@dataclass(frozen=True)
class ExportResult(JsonRecord):
    """An exported model and how far its outputs are from the reference's on the same images.

    ``top1_agreement_pct`` is the share of check images on which the converted file and the
    reference pick the same class; ``max_abs_diff`` / ``mean_abs_diff`` compare their logits.
    ``checked`` is False (and the figures None) when no runtime here runs the format; ``note``
    says why. With labelled data, ``top1_pct`` and ``reference_top1_pct`` are both accuracies.
    """

    format: str
    precision: str
    path: str
    files: tuple[str, ...]
    size_bytes: int
    source: str
    input_shape: tuple[int, ...]
    quantizer: str | None
    reference: str
    checked_by: str | None
    checked: bool
    check_data: str
    num_check_images: int
    max_abs_diff: float | None
    mean_abs_diff: float | None
    top1_agreement_pct: float | None
    min_agreement_pct: float
    top1_pct: float | None
    reference_top1_pct: float | None
    passed: bool
    convert_s: float
    check_s: float
    created_utc: str
    note: str = ""

    def summary(self) -> str:
        """One line: the file, its size, and the check."""
        head = f"{self.format} {self.precision}: {self.path} ({self.size_bytes:,} B)"
        if not self.checked:
            return f"{head}; not checked: {self.note}"
        acc = (
            ""
            if self.top1_pct is None
            else f"; top-1 {self.top1_pct:.2f}% (reference {self.reference_top1_pct:.2f}%)"
        )
        return (
            f"{head}; top-1 agreement {self.top1_agreement_pct:.2f}% with {self.reference} on "
            f"{self.num_check_images} images ({self.check_data}), max |diff| {self.max_abs_diff:.3g}, "
            f"mean |diff| {self.mean_abs_diff:.3g}{acc}"
        )


def convert_model(
    model: nn.Module | str | os.PathLike,
    fmt: str,
    out_dir: str | os.PathLike,
    *,
    input_shape: Sequence[int] | str,
    precision: str = "fp32",
    calibration: np.ndarray | None = None,
    options: dict[str, Any] | None = None,
) -> Converted:
    """Convert without a check into an existing folder (what runtimes do with a module they are given)."""
    exporter = EXPORTERS.get(fmt)()
    source: nn.Module | Path = model if isinstance(model, nn.Module) else Path(model)
    shape = parse_input_shape(input_shape)
    if isinstance(source, nn.Module):
        with evaluating(source):
            return exporter.convert(
                source, shape, Path(out_dir), precision=precision, calibration=calibration, options=options
            )
    return exporter.convert(
        source, shape, Path(out_dir), precision=precision, calibration=calibration, options=options
    )


def _check_inputs(
    data: Any, images: np.ndarray | None, labels: np.ndarray | None, shape: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray | None, str, Any]:
    """Check images (and labels) with their description, and the data splits (for calibration)."""
    if images is not None:
        array = np.ascontiguousarray(images, dtype=np.float32)
        if array.ndim != len(shape) or tuple(array.shape[1:]) != tuple(shape[1:]):
            raise InvalidInputError(
                f"check images have shape {tuple(array.shape)}; the model takes (N, {', '.join(map(str, shape[1:]))})"
            )
        return array, labels, f"{len(array)} given images", None
    if data is None:
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((_RANDOM_CHECK_IMAGES, *shape[1:])).astype(np.float32)
        return noise, None, f"seeded normal noise (seed {seed}); give --data for real images", None
    from slimforge.data import load_dataset, sample_batch

    splits = load_dataset(data, seed=seed) if isinstance(data, str) else data
    part, name = (splits.test, "test") if splits.test is not None else (splits.val, "validation")
    if tuple(part.input_shape) != tuple(shape[1:]):
        raise InvalidInputError(
            f"the data's images are {part.input_shape} but the model takes {tuple(shape[1:])}; "
            "give data of the model's input size"
        )
    x, y = sample_batch(part, len(part), seed=seed)  # every image of the split (order is irrelevant)
    return x.numpy(), y.numpy(), f"{name} split of {getattr(splits, 'spec', data)}", splits


def _calibration(splits: Any, images: np.ndarray | None, count: int, seed: int) -> np.ndarray | None:
    if images is not None:
        return np.ascontiguousarray(images, dtype=np.float32)
    if splits is None:
        return None
    from slimforge.data import calibration_batch

    return calibration_batch(splits.train, min(count, len(splits.train)), seed=seed).numpy()


def export_model(
    model: nn.Module | str | os.PathLike,
    fmt: str,
    out_dir: str | os.PathLike,
    *,
    input_shape: Sequence[int] | str | None = None,
    precision: str = "fp32",
    data: Any = None,
    check_images: np.ndarray | None = None,
    check_labels: np.ndarray | None = None,
    calibration_images: np.ndarray | None = None,
    num_calibration: int = 128,
    min_agreement_pct: float | None = None,
    check: bool = True,
    threads: int = 1,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> ExportResult:
    """Convert ``model`` to ``fmt``, check the converted file against the model, write it to ``out_dir``.

    The converted file runs on the check images wherever a runtime for it is installed here (the
    RKNN toolkit's simulator for ``rknn``); its logits are compared with the reference's (the
    PyTorch model, or ONNX Runtime on an ``.onnx`` input). Below ``min_agreement_pct`` top-1
    agreement the export fails with the figures. Files appear in ``out_dir`` only once converted
    and checked (``model<suffix>`` and ``export.json``): a failure leaves no partial file.

    Args:
        model: a PyTorch module, or an ``.onnx`` file (formats ``onnx``, ``openvino``, ``rknn``).
        fmt: a name from :data:`EXPORTERS` (onnx, tflite, openvino, executorch, rknn, torchscript).
        out_dir: the folder to write into (created).
        input_shape: batch included; an ``.onnx`` file's own shape when None.
        precision: ``fp32`` or ``int8`` (the format's own quantizer, calibrated on the data's
            training images or ``calibration_images``).
        data: a data spec (``npz:FILE``) or :class:`~slimforge.data.DatasetSplits`: its test split
            (validation when it has none) is what the check runs on; without data, seeded noise.
        check_images: float32 normalised images to check on instead (``check_labels`` optional).
        calibration_images: float32 normalised images to calibrate INT8 on instead of the data's.
        num_calibration: training images drawn for INT8 calibration.
        min_agreement_pct: the threshold; :data:`DEFAULT_MIN_AGREEMENT_PCT` by precision when None.
        check: run the output check (off: convert only, ``checked=False``).
        threads: threads of the runtime that runs the check.
        seed: seeds the calibration draw and the noise.
        options: format settings (``rknn_python``, ``rknn_target``).

    Raises:
        ExportError: the converter failed, or the agreement is below the threshold (with figures).
        MissingDependencyError: the format's converter is not installed.
    """
    exporter = EXPORTERS.get(fmt)()
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    threshold = (
        DEFAULT_MIN_AGREEMENT_PCT[precision] if min_agreement_pct is None else float(min_agreement_pct)
    )
    if not 0.0 <= threshold <= 100.0:
        raise InvalidInputError(f"min_agreement_pct must lie in 0..100, got {min_agreement_pct!r}")
    if isinstance(model, nn.Module):
        source: nn.Module | Path = model
        if input_shape is None:
            raise InvalidInputError(
                f"give the input shape of the {type(model).__name__} model, e.g. 1x3x32x32"
            )
        shape = parse_input_shape(input_shape)
    else:
        source = Path(model)
        if source.suffix.lower() != ".onnx":
            raise InvalidInputError(
                f"{source} is not an .onnx file; give a PyTorch model (a zoo name or a saved model directory) "
                "or an .onnx file"
            )
        from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape

        proto = load_onnx(source)
        _, declared, _ = onnx_input(proto, source)
        shape = resolve_input_shape(declared, input_shape, source)
        del proto
    images, labels, described, splits = _check_inputs(data, check_images, check_labels, shape, seed)
    calibration = None
    if precision == "int8":
        calibration = _calibration(splits, calibration_images, num_calibration, seed)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = _export_into(
            exporter, source, shape, out_dir, precision, calibration, images, labels, described, threshold,
            check, threads, options,
        )  # fmt: skip
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed export leaves nothing behind, not even its folder
        raise
    atomic_write_json(out_dir / EXPORT_RECORD, result.to_dict())
    return result


def _export_into(
    exporter: Any,
    source: nn.Module | Path,
    shape: tuple[int, ...],
    out_dir: Path,
    precision: str,
    calibration: np.ndarray | None,
    images: np.ndarray,
    labels: np.ndarray | None,
    described: str,
    threshold: float,
    check: bool,
    threads: int,
    options: dict[str, Any] | None,
) -> ExportResult:
    fmt = exporter.name
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        start = time.perf_counter()
        if isinstance(source, nn.Module):
            with evaluating(source):
                converted = exporter.convert(
                    source, shape, Path(tmp), precision=precision, calibration=calibration,
                    check_images=images if check else None, options=options,
                )  # fmt: skip
        else:
            converted = exporter.convert(
                source, shape, Path(tmp), precision=precision, calibration=calibration,
                check_images=images if check else None, options=options,
            )  # fmt: skip
        convert_s = time.perf_counter() - start
        result = _checked(
            exporter,
            source,
            converted,
            images,
            labels,
            described,
            shape,
            precision,
            threshold,
            check,
            threads,
        )
        result = replace(result, convert_s=convert_s)
        final = [out_dir / f.name for f in converted.files]
        result = replace(
            result,
            path=str(final[0]),
            files=tuple(str(f) for f in final),
            size_bytes=sum(f.stat().st_size for f in converted.files),
        )
        if not result.passed:
            raise ExportError(
                f"{fmt} {precision} export of {_label(source)} agrees with {result.reference} on only "
                f"{result.top1_agreement_pct:.2f}% of {result.num_check_images} images (threshold {threshold:g}%; "
                f"max |diff| {result.max_abs_diff:.3g}, mean |diff| {result.mean_abs_diff:.3g}); nothing was written",
                result,
            )
        # Everything converted and checked: move into place (each rename atomic).
        for src, dst in zip(converted.files, final):
            os.replace(src, dst)
    return result


def _label(source: nn.Module | Path) -> str:
    return type(source).__name__ if isinstance(source, nn.Module) else str(source)


def _checked(
    exporter: Any,
    source: nn.Module | Path,
    converted: Converted,
    images: np.ndarray,
    labels: np.ndarray | None,
    described: str,
    shape: tuple[int, ...],
    precision: str,
    threshold: float,
    check: bool,
    threads: int,
) -> ExportResult:
    from slimforge.hardware.export._check import reference_outputs, runtime_outputs

    reference = "PyTorch" if isinstance(source, nn.Module) else f"ONNX Runtime on {source.name}"
    base = ExportResult(
        format=exporter.name,
        precision=precision,
        path=str(converted.files[0]),
        files=tuple(str(f) for f in converted.files),
        size_bytes=0,
        source="pytorch" if isinstance(source, nn.Module) else "onnx",
        input_shape=shape,
        quantizer=exporter.int8 if precision == "int8" else None,
        reference=reference,
        checked_by=None,
        checked=False,
        check_data=described,
        num_check_images=0,
        max_abs_diff=None,
        mean_abs_diff=None,
        top1_agreement_pct=None,
        min_agreement_pct=threshold,
        top1_pct=None,
        reference_top1_pct=None,
        passed=True,
        convert_s=0.0,
        check_s=0.0,
        created_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        note=converted.note,
    )
    if not check:
        return replace(base, note=_join(converted.note, "check skipped"))
    start = time.perf_counter()
    if converted.outputs is not None:
        outputs, by = converted.outputs, converted.outputs_by
    else:
        from slimforge.hardware.runtime import RUNTIMES

        engine = RUNTIMES.get(exporter.runtime)()
        try:
            version = engine.version()
            outputs = runtime_outputs(exporter.runtime, converted.files[0], images, shape, threads)
        except MissingDependencyError as exc:
            return replace(base, note=_join(converted.note, f"no {exporter.runtime} runtime here ({exc})"))
        by = f"{exporter.runtime} {version}" + (f" ({engine.delegate()})" if engine.delegate() else "")
    ref = reference_outputs(source, images, shape)
    outputs = np.asarray(outputs, dtype=np.float32).reshape(len(images), -1)
    if outputs.shape != ref.shape:
        raise ExportError(
            f"the {exporter.name} file gives outputs of shape {outputs.shape[1:]}, the reference {ref.shape[1:]}"
        )
    diff = np.abs(outputs - ref)
    agree = float(np.mean(outputs.argmax(1) == ref.argmax(1)) * 100.0)
    top1 = ref_top1 = None
    if labels is not None:
        top1 = float(np.mean(outputs.argmax(1) == labels) * 100.0)
        ref_top1 = float(np.mean(ref.argmax(1) == labels) * 100.0)
    return replace(
        base,
        checked_by=by,
        checked=True,
        num_check_images=len(images),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        top1_agreement_pct=agree,
        top1_pct=top1,
        reference_top1_pct=ref_top1,
        passed=agree >= threshold,
        check_s=time.perf_counter() - start,
    )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
