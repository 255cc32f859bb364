"""The model profile: parameters, MACs/FLOPs, peak activation memory, size, per-layer table, latency."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.hardware import latency as _latency
from slimforge.hardware.flops import MACS_NOTE
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.hardware.latency import LatencyProtocol, LatencyResult
from slimforge.hardware.runtime import RUNTIMES, check_threads
from slimforge.io import JsonRecord

__all__ = ["LayerProfile", "ModelProfile", "model_size_bytes", "profile_model", "with_latency"]

EAGER_PEAK_NOTE = (
    "peak activation follows PyTorch eager execution op by op: BatchNorm is its own op (not folded into "
    "the conv), in-place activations reuse their input's memory"
)
ONNX_MACS_NOTE = (
    "MACs counted from the ONNX graph (Conv, Gemm, MatMul and their integer forms); FLOPs = 2 x MACs; "
    "FlopCounterMode needs a PyTorch model"
)


@dataclass(frozen=True)
class LayerProfile(JsonRecord):
    """One row of the per-layer table (a PyTorch layer call, or an ONNX node).

    ``intensity_macs_per_byte`` is MACs per byte moved, the bytes being the layer's weights at the
    profile's weight bit-width plus its input and output activations. ``None`` marks a figure that
    is not available (an ONNX tensor without an inferred shape).
    """

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    num_params: int
    macs: int | None
    input_act_bytes: int | None
    output_act_bytes: int | None
    weight_bytes: int
    intensity_macs_per_byte: float | None
    macs_share: float | None
    dominant: bool


@dataclass(frozen=True)
class ModelProfile(JsonRecord):
    """Everything ``slimforge profile`` reports about one model.

    Static figures (MACs, FLOPs, peak activation memory, the layer table) are for
    ``analysis_shape`` (batch 1 unless an ONNX file fixes another); latency is for ``input_shape``.
    ``notes`` says what is not available for this kind of input and why.
    """

    model: str
    source: str
    input_shape: tuple[int, ...]
    analysis_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    num_params: int
    macs: int | None
    flops: int | None
    macs_note: str
    peak_act_bytes: int | None
    peak_act_layer: str | None
    weight_bits: int
    model_size_bytes: int
    layers: tuple[LayerProfile, ...]
    top_k: int
    latency: LatencyResult | None
    notes: tuple[str, ...]


def model_size_bytes(num_params: int, weight_bits: int = 32) -> int:
    """Bytes to store ``num_params`` weights at ``weight_bits`` bits each (rounded up)."""
    return math.ceil(num_params * weight_bits / 8)


def _check_int(name: str, value: object, lowest: int, highest: int | None = None, flag: str = "") -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lowest
    if ok and highest is not None:
        ok = value <= highest  # type: ignore[operator]
    if not ok:
        bounds = f"between {lowest} and {highest}" if highest is not None else f">= {lowest}"
        raise InvalidInputError(f"{name} must be an integer {bounds}, got {value!r}{flag}")
    return value  # type: ignore[return-value]


def _rows(
    raw: Sequence[tuple[str, str, tuple[int, ...] | None, int, int | None, int | None, int | None]],
    total_macs: int | None,
    weight_bits: int,
    top_k: int,
) -> tuple[LayerProfile, ...]:
    ranked = sorted((i for i, r in enumerate(raw) if r[4]), key=lambda i: -(raw[i][4] or 0))
    top = set(ranked[:top_k])
    rows = []
    for i, (name, kind, shape, params, macs, in_bytes, out_bytes) in enumerate(raw):
        weight_bytes = model_size_bytes(params, weight_bits)
        moved = None if in_bytes is None or out_bytes is None else weight_bytes + in_bytes + out_bytes
        rows.append(
            LayerProfile(
                name=name,
                type=kind,
                output_shape=shape,
                num_params=params,
                macs=macs,
                input_act_bytes=in_bytes,
                output_act_bytes=out_bytes,
                weight_bytes=weight_bytes,
                intensity_macs_per_byte=macs / moved if macs is not None and moved else None,
                macs_share=macs / total_macs if macs is not None and total_macs else None,
                dominant=i in top,
            )
        )
    return tuple(rows)


def profile_model(
    model_or_path: nn.Module | str | Path,
    input_shape: Sequence[int] | str | None = (1, 3, 224, 224),
    *,
    runtime: str = "onnxruntime",
    threads: int = 1,
    measure_latency: bool = True,
    weight_bits: int = 32,
    top_k: int = 5,
    protocol: LatencyProtocol | None = None,
    name: str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ModelProfile:
    """Profile a model: parameters, MACs/FLOPs, peak activation memory, size, layers, latency.

    Args:
        model_or_path: an ``nn.Module``, a ``.onnx`` file, or a zoo model name (built with 1000
            classes). A saved slimforge model directory is loaded first with
            :func:`slimforge.io.load_model`.
        input_shape: the input, batch included; ``None`` takes an ONNX file's declared shape.
        runtime: latency runtime, a name from ``RUNTIMES`` (``onnxruntime`` or ``torch``).
        threads: intra-op threads for the latency measurement.
        measure_latency: measure latency (seconds) or only count (fast).
        weight_bits: bit-width of one weight for the model size and the layers' weight bytes.
        top_k: how many layers to mark as dominant (largest MACs).
        protocol: latency protocol; defaults of :class:`LatencyProtocol` when None.
        name: the label of the model in the report.
        seed: seeds the random input.
        progress: tqdm bar on stderr while measuring latency.
    """
    weight_bits = _check_int("weight bits", weight_bits, 1, 64, "; use e.g. --weight-bits 8")
    top_k = _check_int("top-k", top_k, 0)
    if measure_latency:
        engine = RUNTIMES.get(runtime)
        threads = check_threads(threads)
    if isinstance(model_or_path, (str, Path)) and _is_model_file(model_or_path):
        path = Path(model_or_path)
        if measure_latency and not engine.runs_onnx_files:
            raise InvalidInputError(
                f"runtime {runtime!r} cannot run the ONNX file {path}; use --device local-cpu (ONNX Runtime)"
            )
        profile = _profile_onnx(path, input_shape, weight_bits, top_k, name or path.name)
    else:
        if isinstance(model_or_path, nn.Module):
            model, label = model_or_path, name or type(model_or_path).__name__
        else:
            from slimforge.zoo import create_model

            model, label = create_model(str(model_or_path)), name or str(model_or_path)
        profile = _profile_torch(model, input_shape, weight_bits, top_k, label)
    if not measure_latency:
        return profile
    target = model if profile.source == "pytorch" else path
    result = _latency.measure_latency(
        target,
        profile.input_shape,
        runtime=runtime,
        threads=threads,
        protocol=protocol,
        seed=seed,
        progress=progress,
    )
    return with_latency(profile, result)


def with_latency(profile: ModelProfile, result: LatencyResult) -> ModelProfile:
    """``profile`` with its latency set to ``result`` (and a note if the measurement is unstable)."""
    notes = tuple(n for n in profile.notes if not n.startswith("latency is UNSTABLE"))
    if not result.stable:
        notes += (
            (
                f"latency is UNSTABLE: relative IQR {result.relative_iqr:.1%} stayed above "
                f"{result.protocol.rel_iqr_threshold:.0%} until the {result.protocol.time_cap_s:g} s cap"
            ),
        )
    return dataclasses.replace(profile, latency=result, notes=notes)


def _is_model_file(value: str | Path) -> bool:
    path = Path(value)
    if path.is_dir():
        raise InvalidInputError(
            f"{path} is a directory; load a saved slimforge model with slimforge.io.load_model first"
        )
    return (
        isinstance(value, Path) or path.is_file() or str(value).lower().endswith(".onnx") or "/" in str(value)
    )


def _per_image_note(batch: int) -> str:
    return (
        f"MACs, FLOPs, peak memory and the layer table are per image (batch 1); latency is for batch {batch}"
    )


def _profile_torch(
    model: nn.Module, input_shape: Sequence[int] | str | None, weight_bits: int, top_k: int, label: str
) -> ModelProfile:
    from slimforge.hardware.torch_trace import trace_model

    shape = parse_input_shape(input_shape if input_shape is not None else (1, 3, 224, 224))
    analysis_shape = (1, *shape[1:])
    trace = trace_model(model, analysis_shape)
    macs = trace.total_flops // 2
    raw = [
        (c.name, c.type, c.output_shape or None, c.num_params, c.flops // 2, c.input_bytes, c.output_bytes)
        for c in trace.layers
    ]
    num_params = sum(p.numel() for p in model.parameters())
    notes: tuple[str, ...] = (EAGER_PEAK_NOTE,)
    if shape[0] != 1:
        notes += (_per_image_note(shape[0]),)
    return ModelProfile(
        model=label,
        source="pytorch",
        input_shape=shape,
        analysis_shape=analysis_shape,
        output_shape=trace.output_shape,
        num_params=num_params,
        macs=macs,
        flops=trace.total_flops,
        macs_note=MACS_NOTE,
        peak_act_bytes=trace.peak_act_bytes,
        peak_act_layer=trace.peak_layer,
        weight_bits=weight_bits,
        model_size_bytes=model_size_bytes(num_params, weight_bits),
        layers=_rows(raw, macs, weight_bits, top_k),
        top_k=top_k,
        latency=None,
        notes=notes,
    )


def _profile_onnx(
    path: Path, input_shape: Sequence[int] | str | None, weight_bits: int, top_k: int, label: str
) -> ModelProfile:
    from slimforge.hardware.onnx_graph import analyse_onnx, load_onnx, onnx_input, resolve_input_shape

    requested = parse_input_shape(input_shape) if input_shape is not None else None
    _, declared, _ = onnx_input(load_onnx(path), path)
    shape = resolve_input_shape(declared, requested, path)
    analysis_shape = (1, *shape[1:]) if declared and declared[0] is None else shape
    analysis = analyse_onnx(path, analysis_shape)
    raw = [
        (n.name, n.op_type, n.output_shape, n.num_params, n.macs, n.input_bytes, n.output_bytes)
        for n in analysis.nodes
    ]
    notes = analysis.notes + (
        (
            "parameters are the ONNX initializers (floating-point and 8/4-bit integer); an exporter that "
            "folds BatchNorm into the convolutions makes this smaller than the PyTorch count"
        ),
        (
            "the layer table lists ONNX nodes in graph order; peak memory follows that order, "
            "before ONNX Runtime's graph optimisations"
        ),
    )
    if analysis_shape[0] != 1:
        notes += (f"{path.name} fixes the batch at {analysis_shape[0]}: static figures are for that batch",)
    elif shape[0] != 1:
        notes += (_per_image_note(shape[0]),)
    if not analysis.nodes:
        raise ModelFileError(f"{path} has no nodes to profile")
    return ModelProfile(
        model=label,
        source="onnx",
        input_shape=shape,
        analysis_shape=analysis_shape,
        output_shape=analysis.output_shape,
        num_params=analysis.num_params,
        macs=analysis.macs,
        flops=None if analysis.macs is None else 2 * analysis.macs,
        macs_note=ONNX_MACS_NOTE,
        peak_act_bytes=analysis.peak_act_bytes,
        peak_act_layer=analysis.peak_layer,
        weight_bits=weight_bits,
        model_size_bytes=model_size_bytes(analysis.num_params, weight_bits),
        layers=_rows(raw, analysis.macs, weight_bits, top_k),
        top_k=top_k,
        latency=None,
        notes=notes,
    )
