"""Post-training static INT8 quantization through ONNX Runtime (QDQ format, per-channel weights).

The float model is exported to ONNX, pre-processed (shape inference and graph optimisation, as
ONNX Runtime's quantization guide asks), calibrated on real images, and written as a QDQ model:
QuantizeLinear/DequantizeLinear pairs around each Conv/Gemm that ONNX Runtime fuses into integer
kernels. Activations are uint8 and weights int8 per output channel (the U8S8 form ONNX Runtime's
x86 kernels are fastest with). The accuracy of the *quantized ONNX file* is what is reported.

Per-layer sensitivity is simulated in PyTorch (each layer alone with int8 weights and inputs),
which ranks the layers cheaply; the fallback then keeps the most sensitive layers in float in
the ONNX model until the accuracy budget holds, verified by ONNX Runtime each time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.data import ArrayDataset
from slimforge.errors import InputShapeError, InvalidInputError, MissingDependencyError
from slimforge.io import JsonRecord
from slimforge.nn import evaluating

__all__ = [
    "CALIBRATION_METHODS",
    "Int8Result",
    "LayerSensitivity",
    "check_calibration",
    "int8_sensitivity",
    "onnx_weight_layers",
    "quantize_int8",
    "quantize_onnx_int8",
]

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def _quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError("INT8 quantization needs onnxruntime; pip install onnxruntime") from None
    return quantization


def _quiet() -> contextlib.AbstractContextManager[None]:
    # ONNX Runtime's quantizer logs advice through the root logger; it would break one-line CLI output.
    from slimforge.hardware.onnx_export import quiet_root_logger

    return quiet_root_logger()


def check_calibration(images: np.ndarray | torch.Tensor, input_shape: Sequence[int]) -> np.ndarray:
    """Calibration images as a float32 (N, C, H, W) array matching ``input_shape`` (batch excluded).

    Raises:
        InputShapeError: for images of another shape, naming both shapes.
    """
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    want = tuple(int(d) for d in input_shape[1:])
    if array.ndim != len(want) + 1 or tuple(array.shape[1:]) != want or len(array) == 0:
        raise InputShapeError(
            f"calibration images have shape {tuple(array.shape)} but the model takes "
            f"(N, {', '.join(map(str, want))}); pass images of the model's input size"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise InputShapeError(
            f"calibration images are {array.dtype}; pass normalised float images (slimforge.data.calibration_batch)"
        )
    return array.astype(np.float32, copy=False)


def onnx_weight_layers(path: str | Path) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(node name, op type, weight shape)`` of every Conv/Gemm/MatMul with a constant weight, in graph order."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: tuple(numpy_helper.to_array(i).shape) for i in model.graph.initializer}
    rows = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in inits:
            rows.append((node.name, node.op_type, inits[node.input[1]]))
    return rows


def quantize_onnx_int8(
    float_onnx: str | Path,
    out_path: str | Path,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    method: str = "minmax",
    exclude_nodes: Sequence[str] = (),
    preprocess: bool = True,
    activation_signed: bool = False,
) -> Path:
    """Quantize ``float_onnx`` to a QDQ INT8 model at ``out_path``, calibrated on ``calibration``.

    Args:
        float_onnx: the float model (batch fixed at export).
        out_path: where the quantized model goes.
        calibration: float32 (N, C, H, W) normalised real images (N >= 1).
        per_channel: per-output-channel weight scales (per-tensor otherwise).
        method: ``minmax``, ``entropy`` or ``percentile`` activation ranges.
        exclude_nodes: ONNX node names kept in float (the sensitivity fallback).
        preprocess: run ONNX Runtime's ``quant_pre_process`` first.
        activation_signed: int8 activations instead of uint8 (slower on x86).
    """
    q = _quantization()
    import onnx

    if method not in CALIBRATION_METHODS:
        raise InvalidInputError(
            f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}"
        )
    model = onnx.load(str(float_onnx))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value for d in dims]
    images = check_calibration(calibration, shape)
    batch = shape[0] if shape and shape[0] > 0 else 1
    input_name = model.graph.input[0].name
    usable = len(images) - len(images) % batch
    if usable == 0:
        raise InputShapeError(f"{len(images)} calibration image(s) do not fill one batch of {batch}")

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._chunks = iter(range(0, usable, batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self._chunks, None)
            return None if start is None else {input_name: images[start : start + batch]}

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    with tempfile.TemporaryDirectory(prefix="slimforge-int8-") as tmp, _quiet():
        source = Path(float_onnx)
        if preprocess:
            source = Path(tmp) / "pre.onnx"
            q.quant_pre_process(str(float_onnx), str(source))
        q.quantize_static(
            str(source),
            str(out_path),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=q.QuantType.QInt8 if activation_signed else q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            nodes_to_exclude=list(exclude_nodes),
            calibrate_method=methods[method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    # The quantizer leaves its augmented model beside the cwd on some versions; never in ours.
    stray = Path("augmented_model.onnx")
    if stray.exists() and stray.stat().st_mtime > os.path.getmtime(out_path) - 60:
        stray.unlink(missing_ok=True)
    return out_path


def preprocessed_weight_layers(float_onnx: str | Path) -> list[tuple[str, str, tuple[int, ...]]]:
    """:func:`onnx_weight_layers` of the pre-processed model (the node names the quantizer sees)."""
    q = _quantization()
    with tempfile.TemporaryDirectory(prefix="slimforge-int8-") as tmp, _quiet():
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(float_onnx), str(pre))
        return onnx_weight_layers(pre)


# ---- per-layer sensitivity ------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSensitivity(JsonRecord):
    """What quantizing one layer alone to INT8 does to the model's output (simulated in PyTorch)."""

    layer: str
    num_params: int
    accuracy_drop_pct: float
    output_kl: float


def _fake_quant_weight(w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    # Symmetric per-output-channel, as ONNX Runtime's per-channel int8 weights.
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().flatten(1).amax(1).clamp_min(1e-12) / qmax
    shape = (-1,) + (1,) * (w.dim() - 1)
    return torch.round(w / scale.view(shape)).clamp(-qmax, qmax) * scale.view(shape)


def _fake_quant_act(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    # Asymmetric per-tensor uint8 with the calibrated range (zero included, as ONNX Runtime does).
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255.0
    zero = round(-lo / scale)
    return (torch.round(x / scale) + zero).clamp(0, 255).sub(zero).mul(scale)


def int8_sensitivity(
    model: nn.Module,
    calibration: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    layers: Sequence[str] | None = None,
) -> list[LayerSensitivity]:
    """Rank layers by how much INT8 (per-channel weights, per-tensor uint8 inputs) alone hurts them.

    Each conv/linear layer is quantized on its own while the rest stays float; the drop in top-1
    accuracy on ``images`` and the KL divergence of the output from the float model's are recorded.
    The model is not changed. Returns one entry per layer, most sensitive (largest KL) first.
    """
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if layers is not None:
        names = [n for n in names if n in set(layers)]
    ranges: dict[str, tuple[float, float]] = {}

    def observe(name: str) -> Callable:
        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0]
            lo, hi = float(x.min()), float(x.max())
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(old[0], lo), max(old[1], hi))

        return hook

    with evaluating(model), torch.no_grad():
        handles = [model.get_submodule(n).register_forward_pre_hook(observe(n)) for n in names]
        try:
            model(calibration)
        finally:
            for h in handles:
                h.remove()
        reference = torch.log_softmax(model(images), 1)
        base_acc = float((reference.argmax(1) == labels).float().mean()) * 100
        results = []
        for n in names:
            layer = model.get_submodule(n)
            original = layer.weight.data.clone()
            lo, hi = ranges[n]
            handle = layer.register_forward_pre_hook(
                lambda _m, inp, lo=lo, hi=hi: (_fake_quant_act(inp[0], lo, hi),) + tuple(inp[1:])
            )
            layer.weight.data = _fake_quant_weight(original)
            try:
                out = torch.log_softmax(model(images), 1)
            finally:
                handle.remove()
                layer.weight.data = original
            acc = float((out.argmax(1) == labels).float().mean()) * 100
            kl = float(torch.nn.functional.kl_div(out, reference, log_target=True, reduction="batchmean"))
            results.append(LayerSensitivity(n, layer.weight.numel(), base_acc - acc, max(kl, 0.0)))
    return sorted(results, key=lambda r: -r.output_kl)


def torch_to_onnx_layers(
    model: nn.Module, input_shape: Sequence[int], onnx_layers: Sequence[tuple[str, str, tuple[int, ...]]]
) -> dict[str, str]:
    """Map conv/linear module paths to ONNX node names, matching execution order and weight shapes.

    The exporter writes nodes in execution order and folds BN into the conv before it, so the k-th
    conv/linear module run is the k-th Conv/Gemm node; a weight shape that disagrees stops the match
    (the layers after it then get no fallback).
    """
    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(names[mod]))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with evaluating(model), torch.no_grad():
            model(torch.zeros(tuple(input_shape)))
    finally:
        for h in handles:
            h.remove()
    mapping: dict[str, str] = {}
    for name, (node, op, shape) in zip(order, onnx_layers):
        want = tuple(model.get_submodule(name).weight.shape)
        got = tuple(shape)
        if op in ("Gemm", "MatMul") and got != want:
            got = tuple(reversed(got))  # MatMul keeps the weight transposed
        if got != want:
            break
        mapping[name] = node
    return mapping


# ---- the whole step: quantize, verify, fall back ------------------------------------------------


@dataclass(frozen=True)
class Int8Result(JsonRecord):
    """An INT8 model written and verified: its file, ONNX Runtime accuracy, layers kept in float."""

    path: str
    val_accuracy_pct: float
    float_layers: tuple[str, ...]
    attempts: int
    sensitivity: tuple[LayerSensitivity, ...]


def quantize_int8(
    model: nn.Module,
    input_shape: Sequence[int],
    calibration: torch.Tensor,
    val_split: ArrayDataset,
    out_dir: str | Path,
    *,
    per_channel: bool = True,
    method: str = "minmax",
    accuracy_floor_pct: float | None = None,
    fallback: bool = True,
    sensitivity_images: int = 512,
    seed: int = 0,
) -> Int8Result:
    """Export ``model``, quantize it to INT8 with ONNX Runtime, verify it, and fall back if needed.

    The accuracy is that of the quantized file on ``val_split`` (ONNX Runtime). When it is below
    ``accuracy_floor_pct`` and ``fallback`` is on, the layers ranked most sensitive by
    :func:`int8_sensitivity` are kept in float, 1, 2, 4, ... of them, until the floor is met (the
    most accurate attempt is kept if it never is). ``model`` is not changed.
    """
    from slimforge.data import sample_batch
    from slimforge.hardware import export_onnx
    from slimforge.training import onnx_accuracy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_onnx = export_onnx(model, tuple(input_shape), out_dir / "float.onnx")
    calib = calibration.numpy() if isinstance(calibration, torch.Tensor) else np.asarray(calibration)
    options = {"per_channel": per_channel, "method": method}
    path = quantize_onnx_int8(float_onnx, out_dir / "int8.onnx", calib, **options)
    accuracy = onnx_accuracy(path, val_split)
    images, labels = sample_batch(val_split, min(sensitivity_images, len(val_split)), seed=seed)
    ranking = int8_sensitivity(model, torch.as_tensor(calib[:64]), images, labels)
    best, attempts = (accuracy, path, 0), 1
    if fallback and accuracy_floor_pct is not None and accuracy < accuracy_floor_pct:
        mapping = torch_to_onnx_layers(model, input_shape, preprocessed_weight_layers(float_onnx))
        ranked = [s.layer for s in ranking if s.layer in mapping]
        k = 1
        while k <= len(ranked):
            path = quantize_onnx_int8(
                float_onnx,
                out_dir / f"int8_float{k}.onnx",
                calib,
                exclude_nodes=[mapping[n] for n in ranked[:k]],
                **options,
            )
            attempts += 1
            acc = onnx_accuracy(path, val_split)
            if acc > best[0] or acc >= accuracy_floor_pct:
                best = (acc, path, k)
            if acc >= accuracy_floor_pct:
                break
            k = len(ranked) if k < len(ranked) < 2 * k else 2 * k
        float_layers = tuple(ranked[: best[2]])
    else:
        float_layers = ()
    return Int8Result(str(best[1]), best[0], float_layers, attempts, tuple(ranking))
