"""``slimforge zoo``: list the model zoo, or ``--profile`` every model in one comparison table."""

from __future__ import annotations

import argparse
import json

from slimforge.cli._common import (
    OptionSpec,
    add_local_device_option,
    add_options,
    add_thread_options,
    local_runtime,
)
from slimforge.errors import SlimforgeError

HELP = "list the hand-designed models; --profile: params, MACs, peak memory, size and latency of each in one table"


# fmt: off
_SELECTION_OPTIONS: tuple[OptionSpec, ...] = (
    ("--profile", None, None, "profile the models (default: just list their names)"),
    ("--input", "1x3x224x224", "SHAPE", "input shape (default 1x3x224x224)"),
    ("--models", None, "A,B", "comma-separated zoo names (default: the whole zoo)"),
)
_OUTPUT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--time-cap", "5", "S", "seconds at most of timed runs per model (default 5)"),
    ("--no-latency", None, None, "count only; do not measure latency"),
    ("--json", None, None, "print the names or the profiles as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, _SELECTION_OPTIONS)
    add_local_device_option(parser)
    add_thread_options(parser)
    add_options(parser, _OUTPUT_OPTIONS)


def run(args: argparse.Namespace) -> int:
    if not args.profile:
        from slimforge.zoo import list_models

        names = list_models()
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    return _profile(args)


def _profile(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int, parse_seconds
    from slimforge.hardware import LatencyProtocol, parse_input_shape, profile_model, with_latency
    from slimforge.io import build_model
    from slimforge.zoo import MODELS, list_models

    shape = parse_input_shape(args.input)
    threads = parse_int("--threads", args.threads, 1)
    protocol = LatencyProtocol(time_cap_s=parse_seconds("--time-cap", args.time_cap))
    args.runtime = local_runtime(args)
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else list_models()
    if not names:
        raise SlimforgeError(
            f"--models {args.models!r} names no model; use e.g. --models mobilenet_v2,resnet18"
        )
    for name in names:
        MODELS.get(name)  # an unknown name stops here, before any work, with close matches
    models, profiles, skipped = {}, {}, []
    first_error: SlimforgeError | None = None
    for name in names:
        try:
            models[name] = build_model({"builder": "zoo", "name": name})
            profiles[name] = profile_model(models[name], shape, measure_latency=False, name=name)
        except SlimforgeError as exc:
            first_error = first_error or exc
            skipped.append({"model": name, "reason": str(exc)})
    if not profiles and first_error is not None:
        raise first_error  # every model failed the same way: a bad --input, ...
    if not args.no_latency and profiles:
        for name, result in _measure(
            models, list(profiles), shape, args.runtime, threads, protocol, skipped
        ).items():
            profiles[name] = with_latency(profiles[name], result)
    done = [p for p in profiles.values() if args.no_latency or p.latency is not None]
    if args.json:
        print(json.dumps({"profiles": [p.to_dict() for p in done], "skipped": skipped}, indent=2))
        return 0
    print(_table(done, shape, protocol))
    for s in skipped:
        print(f"skipped {s['model']}: {s['reason']}")
    return 0


def _table(profiles, shape, protocol) -> str:
    from slimforge.cli._profile import human_bytes, human_count
    from slimforge.hardware import format_shape
    from slimforge.io import render_table

    lines = [f"input {format_shape(shape)}; static figures per image (batch 1); model size at 32-bit weights"]
    latency = next((p.latency for p in profiles if p.latency is not None), None)
    if latency is not None:
        lines.append(f"latency measured on {latency.conditions()}; models' runs interleaved")
    rows = []
    for p in profiles:
        lat = p.latency
        rows.append(
            [
                p.model,
                human_count(p.num_params),
                human_count(p.macs),
                human_bytes(p.peak_act_bytes),
                human_bytes(p.model_size_bytes),
                "n/a" if lat is None else f"{lat.latency_ms_median:.2f}",
                "n/a" if lat is None else f"{lat.latency_ms_iqr:.2f}",
                "n/a" if lat is None else str(lat.num_runs),
                "" if lat is None or lat.stable else "UNSTABLE",
            ]
        )
    headers = ["model", "params", "MACs", "peak act", "size", "median ms", "IQR ms", "runs", "note"]
    lines.append(render_table(headers, rows, [False, True, True, True, True, True, True, True, False]))
    if profiles:
        lines.append(f"note: {profiles[0].macs_note}")
    if any(p.latency is not None and not p.latency.stable for p in profiles):
        lines.append(
            f"note: UNSTABLE = relative IQR above {protocol.rel_iqr_threshold:.0%} when the "
            f"{protocol.time_cap_s:g} s cap was reached (a busy machine); the median is still shown"
        )
    return "\n".join(lines)


def _measure(models, names, shape, runtime, threads, protocol, skipped):
    """Latency of every model, runs interleaved so a load change on the machine hits all alike."""
    from slimforge.hardware import measure_latencies, measure_latency

    progress = True  # a bar on a terminal, plain lines in a log (slimforge.io.progress_bar)
    try:
        results = measure_latencies(
            [models[n] for n in names],
            shape,
            runtime=runtime,
            threads=threads,
            protocol=protocol,
            progress=progress,
        )
        return dict(zip(names, results))
    except SlimforgeError:
        pass  # one model cannot run: measure one at a time to find it and keep the others
    results = {}
    for name in names:
        try:
            results[name] = measure_latency(
                models[name], shape, runtime=runtime, threads=threads, protocol=protocol, progress=progress
            )
        except SlimforgeError as exc:
            skipped.append({"model": name, "reason": str(exc)})
    return results
