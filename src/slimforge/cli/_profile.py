"""``slimforge profile``: parameters, MACs, peak memory, size, per-layer table and latency of one model."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimforge.cli._common import (
    OptionSpec,
    add_local_device_option,
    add_model_argument,
    add_model_options,
    add_options,
    add_thread_options,
    local_runtime,
    model_options,
)
from slimforge.errors import InvalidInputError
from slimforge.io import render_table

HELP = "profile a model: params, MACs/FLOPs, peak activation memory, size, per-layer table, latency"

DEFAULT_INPUT = (1, 3, 224, 224)


# fmt: off
_OPTIONS: tuple[OptionSpec, ...] = (
    ("--weight-bits", "32", "B", "bits per weight for the model size (default 32)"),
    ("--top", "5", "K", "mark the K layers with the most MACs (default 5)"),
    ("--time-cap", "10", "S", "seconds at most for the timed latency runs (default 10)"),
    ("--no-latency", None, None, "count only; do not measure latency"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are parsed in run(), not by argparse, so bad values give slimforge's one-line error.
    add_model_argument(
        parser,
        "a zoo model name, a .onnx file, a saved slimforge model directory (or a run's model folder), or "
        "your own factory: path/to/file.py:factory or package.module:factory (see --model-arg, --weights)",
    )
    parser.add_argument(
        "--input",
        metavar="SHAPE",
        help="input shape, e.g. 1x3x224x224 (default: the model's own: a saved model's or ONNX file's "
        "recorded shape, 1x3x32x32 for CIFAR-stride zoo models, else 1x3x224x224)",
    )
    add_local_device_option(parser)
    add_thread_options(parser)
    add_options(parser, _OPTIONS)
    add_model_options(parser)
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")


def parse_int(flag: str, text: str, lowest: int) -> int:
    """``text`` as an int >= ``lowest``, or a one-line error naming ``flag``."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{flag} must be an integer >= {lowest}, got {text!r}") from None
    if value < lowest:
        raise InvalidInputError(f"{flag} must be an integer >= {lowest}, got {value}")
    return value


def parse_seconds(flag: str, text: str) -> float:
    """``text`` as a positive number of seconds, or a one-line error naming ``flag``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{flag} must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise InvalidInputError(f"{flag} must be a positive number of seconds, got {text!r}")
    return value


def resolve_model(
    spec: str, model_args: dict[str, Any] | None = None, weights: str | None = None
) -> tuple[Any, str, tuple[int, ...] | None]:
    """MODEL → ``(nn.Module or .onnx path, label, default input shape)``.

    A run's model folder (no ``model.json``, a ``model.onnx``) is its deployable file; an existing
    file, or a name with ``.onnx``, is an ONNX (or another runtime's) file; anything else goes
    through :func:`slimforge.io.open_model`: a saved model directory, a zoo name or a reference
    ``path/to/file.py:factory`` / ``package.module:factory`` (with ``model_args`` and ``weights``).
    """
    from slimforge.io import is_reference, open_model

    path = Path(spec)
    if path.is_dir() and not (path / "model.json").is_file() and (path / "model.onnx").is_file():
        path = path / "model.onnx"  # a run's model directory: its deployable file
        return path, str(path), None
    if not is_reference(spec) and not path.is_dir() and path.name != "model.json" and (
        path.exists() or path.suffix.lower() in (".onnx", ".tflite", ".xml", ".pte", ".rknn") or "/" in spec
    ):
        return path, spec, None
    source = open_model(spec, model_args=model_args, weights=weights)
    what = source.config.get("name") or source.config.get("ref") or source.config["builder"]
    label = spec if not path.is_dir() else f"{spec} ({source.config['builder']} {what})"
    return source.model, label, source.input_shape or DEFAULT_INPUT


def run(args: argparse.Namespace) -> int:
    from slimforge.hardware import LatencyProtocol, parse_input_shape, profile_model

    args.runtime = local_runtime(args)  # an unknown device stops here, before the model is built
    threads = parse_int("--threads", args.threads, 1)
    weight_bits = parse_int("--weight-bits", args.weight_bits, 1)
    top_k = parse_int("--top", args.top, 0)
    protocol = LatencyProtocol(time_cap_s=parse_seconds("--time-cap", args.time_cap))
    requested = parse_input_shape(args.input) if args.input is not None else None
    model, label, default_shape = resolve_model(args.model, **model_options(args))
    profile = profile_model(
        model,
        requested or default_shape,
        runtime=args.runtime,
        threads=threads,
        measure_latency=not args.no_latency,
        weight_bits=weight_bits,
        top_k=top_k,
        protocol=protocol,
        name=label,
        progress=True,
    )
    print(profile.to_json() if args.json else format_profile(profile))
    return 0


# ---- human output ---------------------------------------------------------------------------


def human_count(value: float | None, unit: str = "") -> str:
    """``3504872`` → ``3.50M``; None → ``n/a``."""
    if value is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:g}{unit}"


def human_bytes(value: float | None) -> str:
    """``9633792`` → ``9.19 MiB``; None → ``n/a``."""
    if value is None:
        return "n/a"
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{int(value)} B"


def _shorten(name: str, width: int = 44) -> str:
    # Keep the end of a long dotted name: the innermost module is what identifies the layer.
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _shape(shape: Sequence[int] | None) -> str:
    return "n/a" if shape is None else "x".join(str(d) for d in shape) or "-"


def format_profile(profile: Any) -> str:
    """The human report of a :class:`~slimforge.hardware.ModelProfile`."""
    from slimforge.hardware import format_shape

    p = profile
    out = [
        f"model   {p.model} ({p.source})",
        (
            f"input   {format_shape(p.input_shape)} -> output {_shape(p.output_shape)}; static figures at "
            f"{format_shape(p.analysis_shape)}, weights at {p.weight_bits} bits"
        ),
    ]
    if p.latency is not None:
        out.append(f"latency measured on {p.latency.conditions()}")
    out.append("")
    rows = []
    for i, layer in enumerate(p.layers):
        rows.append(
            [
                str(i),
                _shorten(layer.name),
                layer.type,
                _shape(layer.output_shape),
                human_count(layer.num_params),
                human_count(layer.macs),
                human_bytes(layer.output_act_bytes),
                "n/a" if layer.intensity_macs_per_byte is None else f"{layer.intensity_macs_per_byte:.1f}",
                "n/a" if layer.macs_share is None else f"{layer.macs_share:.1%}",
                "*" if layer.dominant else "",
            ]
        )
    headers = ["#", "layer", "type", "output", "params", "MACs", "act", "MACs/B", "%MACs", "top"]
    right = [True, False, False, False, True, True, True, True, True, False]
    out.append(render_table(headers, rows, right))
    out.append("")
    top = sorted((layer for layer in p.layers if layer.dominant), key=lambda layer: -(layer.macs or 0))
    share = sum(layer.macs_share or 0 for layer in top)
    out += [
        f"parameters        {p.num_params:,} ({human_count(p.num_params)})",
        f"MACs              {_exact(p.macs)} ({human_count(p.macs)})    FLOPs {_exact(p.flops)} ({human_count(p.flops)})",
        f"peak activation   {_exact(p.peak_act_bytes)} B ({human_bytes(p.peak_act_bytes)})"
        + (f" at {p.peak_act_layer}" if p.peak_act_layer else ""),
        f"model size        {p.model_size_bytes:,} B ({human_bytes(p.model_size_bytes)}) at {p.weight_bits}-bit weights",
    ]
    if top:
        out.append(
            f"top-{len(top)} layers      {share:.1%} of MACs: " + ", ".join(layer.name for layer in top)
        )
    out.append(f"note: {p.macs_note}")
    out.append(
        "note: act = output activation bytes; MACs/B = MACs per byte moved (weights + input + output); "
        "peak activation = largest set of live tensors over the execution order (MCUNet), input and output included"
    )
    out += [f"note: {n}" for n in p.notes]
    if p.latency is not None:
        out.append(f"latency           {p.latency.summary()}")
    else:
        out.append("latency           not measured (--no-latency)")
    return "\n".join(out)


def _exact(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"
