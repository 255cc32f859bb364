"""``slimforge measure``: a model's latency (and energy) on a device, cached in a run store."""

from __future__ import annotations

import argparse
import json
from typing import Any

from slimforge.cli._common import (
    add_latency_device_options,
    add_model_options,
    add_thread_options,
    model_options,
)
from slimforge.errors import InvalidInputError

HELP = (
    "measure a model's latency (and energy) on a device: local-cpu, local-torch, local-litert, local-openvino, "
    "local-executorch, table:FILE, remote:URL[#RUNTIME]"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are parsed in run(), not by argparse, so bad values give slimforge's one-line error.
    parser.add_argument(
        "model",
        metavar="MODEL",
        nargs="+",
        help="a .onnx file (FP32 or INT8 QDQ), a .tflite / OpenVINO .xml / .pte / .rknn file for its runtime's "
        "device, a zoo model name or a saved model directory; for a table device, an architecture string. "
        "Several with --farm",
    )
    add_latency_device_options(
        parser,
        "local-cpu (ONNX Runtime), local-torch, local-litert (LiteRT, XNNPACK), local-openvino, "
        "local-executorch (XNNPACK), table:FILE.csv or remote:http://HOST:PORT[#RUNTIME] (RUNTIME: onnxruntime, "
        "litert, openvino, executorch or rknn, among those the agent lists)",
    )
    parser.add_argument(
        "--input", metavar="SHAPE", help="input shape, e.g. 1x3x32x32 (default: the ONNX file's own)"
    )
    add_thread_options(parser)
    parser.add_argument(
        "--cache",
        metavar="RUN_DIR_OR_DB",
        help="run directory or run-store file caching measurements by their conditions",
    )
    parser.add_argument(
        "--force", action="store_true", help="measure again even if the cache holds the figure"
    )
    parser.add_argument(
        "--time-cap", default="10", metavar="S", help="seconds at most for the timed runs (default 10)"
    )
    parser.add_argument(
        "--repeat",
        default="1",
        metavar="N",
        help="measure N times (fresh sessions, not cached) and compare the medians with the IQR (default 1)",
    )
    parser.add_argument("--no-energy", action="store_true", help="skip the energy figure")
    parser.add_argument(
        "--farm",
        action="append",
        metavar="SPEC[,SPEC...]",
        help="measure the MODELs in parallel on these devices instead of --device, each device one model at a "
        "time, through a measurement farm on Ray (needs slimforge[ray]); the devices must be the same hardware "
        "and runtime, e.g. --farm remote:http://pi-a:8765,remote:http://pi-b:8765 (repeatable)",
    )
    parser.add_argument(
        "--address", help="Ray cluster to join for --farm (e.g. auto); default: a local Ray instance"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_options(parser)


def open_device(spec: str, token_file: str | None, timeout: str) -> Any:
    """The device of ``--device``; remote devices get the token file and timeout."""
    from slimforge.cli._profile import parse_seconds
    from slimforge.hardware.devices import get_device

    if spec.strip().startswith("remote:"):
        return get_device(spec, token_file=token_file, timeout_s=parse_seconds("--timeout", timeout))
    if token_file is not None:
        raise InvalidInputError(f"--token-file is for remote devices; {spec} does not use a token")
    return get_device(spec)


def _resolve(spec: str, device: Any, args: argparse.Namespace) -> tuple[Any, tuple[int, ...] | None]:
    from slimforge.cli._profile import resolve_model

    if device.kind == "table":
        return spec, None  # an architecture string: the table device checks it
    model, _, shape = resolve_model(spec, **model_options(args))
    return model, shape


def run(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int, parse_seconds
    from slimforge.hardware import LatencyProtocol, parse_input_shape
    from slimforge.hardware.cache import open_cache

    threads = parse_int("--threads", args.threads, 1)
    repeat = parse_int("--repeat", args.repeat, 1)
    cap = parse_seconds("--time-cap", args.time_cap)
    # A cap below the default minimum timed duration would leave every figure flagged unstable.
    protocol = LatencyProtocol(time_cap_s=cap, min_time_s=min(LatencyProtocol.min_time_s, cap))
    requested = parse_input_shape(args.input) if args.input is not None else None
    if args.farm:
        return _run_farm(args, threads=threads, repeat=repeat, protocol=protocol, input_shape=requested)
    if len(args.model) > 1:
        raise InvalidInputError(
            f"{len(args.model)} models given: measure one MODEL, or several in parallel with --farm SPEC,SPEC"
        )
    if args.address is not None:
        raise InvalidInputError("--address is the Ray cluster of --farm; give --farm, or drop --address")
    device = open_device(args.device, args.token_file, args.timeout)
    if args.cache is not None and not device.cacheable:
        raise InvalidInputError(f"--cache: device {device.spec} reads a table; there is nothing to cache")
    model, default_shape = _resolve(args.model[0], device, args)
    shape = requested or default_shape
    progress = True  # a bar on a terminal, plain lines in a log (slimforge.io.progress_bar)
    kwargs = {"threads": threads, "protocol": protocol, "energy": not args.no_energy, "progress": progress}
    store = open_cache(args.cache) if args.cache is not None else None
    try:
        result = device.measure(model, shape, store=store, force=args.force, **kwargs)
    finally:
        if store is not None:
            store.close()
    # Repeats check the measurement's stability: fresh sessions, never written to the cache.
    repeats = [result] + [device.measure(model, shape, **kwargs) for _ in range(repeat - 1)]
    if args.json:
        payload: dict[str, Any] = {"measurement": result.to_dict(), "cache": args.cache}
        if repeat > 1:
            payload["repeats"] = [r.to_dict() for r in repeats]
            payload["stability"] = _stability(repeats)
        print(json.dumps(payload, indent=2))
    else:
        print(format_measurement(result, args.cache))
        if repeat > 1:
            print(format_stability(repeats))
    return 0


def _farm_specs(args: argparse.Namespace) -> list[str]:
    """The devices of ``--farm`` (comma-separated, the option repeatable); other options checked."""
    import importlib.util

    from slimforge.errors import MissingDependencyError

    specs = [s.strip() for given in args.farm for s in given.split(",") if s.strip()]
    if not specs:
        raise InvalidInputError("--farm needs device specs, e.g. --farm remote:http://pi-a:8765,remote:http://pi-b:8765")
    for option, given in (("--cache", args.cache is not None), ("--force", args.force), ("--repeat", args.repeat != "1"),
                          ("--device", args.device != "local-cpu")):
        if given:
            raise InvalidInputError(
                f"{option} goes without --farm (a farm measures each model once, on whichever of its devices is "
                "free, and caches nothing); drop it"
            )
    tables = [s for s in specs if s.startswith("table:")]
    if tables:
        raise InvalidInputError(f"--farm {tables[0]}: a table device reads its figures; measure on it without --farm")
    if importlib.util.find_spec("ray") is None:
        raise MissingDependencyError("--farm needs Ray, which is not installed: pip install 'slimforge[ray]'")
    return specs


def _run_farm(
    args: argparse.Namespace, *, threads: int, repeat: int, protocol: Any, input_shape: tuple[int, ...] | None
) -> int:
    """``measure MODEL... --farm SPEC,SPEC``: every model measured once, in parallel across the devices."""
    from slimforge.cli._profile import parse_seconds, resolve_model
    from slimforge.search.executors.farm import MeasurementFarm

    specs = _farm_specs(args)
    models, shapes = [], set()
    for name in args.model:  # every model opens before Ray starts: a wrong name costs nothing
        model, _, shape = resolve_model(name, **model_options(args))
        models.append(model)
        shapes.add(tuple(input_shape or shape or ()))
    if len(shapes) > 1:
        shown = ", ".join("x".join(map(str, s)) or "the file's own" for s in sorted(shapes))
        raise InvalidInputError(f"the models take different inputs ({shown}); give --input SHAPE, or one farm run each")
    shape_given = next(iter(shapes)) or None
    options: dict[str, Any] = {}
    if any(s.startswith("remote:") for s in specs):
        options["timeout_s"] = parse_seconds("--timeout", args.timeout)
        if args.token_file is not None:
            options["token_file"] = args.token_file
    elif args.token_file is not None:
        raise InvalidInputError("--token-file is for remote devices; the farm has none")
    if args.address is None:
        # The actors of a local Ray instance run on this machine: an agent this process cannot reach is
        # named before Ray starts (seconds, and its own log lines), not after.
        from slimforge.hardware.devices import get_device

        for spec in specs:
            if spec.startswith("remote:"):
                get_device(spec, **options).describe()
    # An unreachable agent or a device of another kind fails here, before anything is measured.
    with MeasurementFarm(specs, address=args.address, **options) as farm:
        results = farm.measure_many(models, shape_given, threads=threads, protocol=protocol, energy=not args.no_energy)
        lost = dict(farm.lost)
    if args.json:
        print(json.dumps({
            "farm": specs,
            "measurements": [
                {"model": name, "device": r.device, "attempts": r.attempts, "measurement": r.measurement.to_dict()}
                for name, r in zip(args.model, results)
            ],
            "lost": lost,
        }, indent=2))
        return 0
    for name, r in zip(args.model, results):
        retried = f" (after {r.attempts - 1} failed attempt(s))" if r.attempts > 1 else ""
        print(f"{name}: measured on {r.device}{retried}")
        print(format_measurement(r.measurement, None))
        print()
    print(f"farm      {len(results)} model(s) on {len(specs)} device(s)"
          + "".join(f"; lost {s}: {why}" for s, why in lost.items()))
    return 0


def _stability(repeats: list[Any]) -> dict[str, Any]:
    medians = [r.latency_ms for r in repeats]
    iqrs = [r.latency_ms_iqr for r in repeats if r.latency_ms_iqr is not None]
    spread = max(medians) - min(medians)
    smallest_iqr = min(iqrs) if iqrs else None
    return {
        "medians_ms": medians,
        "iqrs_ms": iqrs,
        "median_spread_ms": spread,
        "smallest_iqr_ms": smallest_iqr,
        "spread_below_iqr": smallest_iqr is not None and spread < smallest_iqr,
    }


def format_stability(repeats: list[Any]) -> str:
    """One line comparing repeated medians with the smallest IQR."""
    s = _stability(repeats)
    if s["smallest_iqr_ms"] is None:
        return "repeat    the device reports no spread (a table): nothing to compare"
    verdict = "below" if s["spread_below_iqr"] else "NOT below"
    medians = ", ".join(f"{m:.3f}" for m in s["medians_ms"])
    return (
        f"repeat    medians {medians} ms: spread {s['median_spread_ms']:.3f} ms, {verdict} the smallest IQR "
        f"{s['smallest_iqr_ms']:.3f} ms"
    )


def format_measurement(m: Any, cache: str | None) -> str:
    """The human report of a :class:`~slimforge.hardware.devices.DeviceMeasurement`."""
    info = m.device_info
    where = ", ".join(
        x
        for x in (
            info.cpu_model and f"{info.cpu_model} ({info.cpu_count} logical cores)",
            info.runtime
            and f"{info.runtime} {info.runtime_version}"
            + (f", delegate {info.delegate}" if info.delegate else ""),
            info.hostname and f"host {info.hostname}",
            info.note,
        )
        if x
    )
    lines = [
        f"model     {m.model}"
        + (f" (sha256 {m.model_sha256[:12]}…, {m.precision})" if m.model_sha256 else "")
    ]
    lines.append(f"device    {m.device}: {where}")
    if m.latency is not None:
        lines.append(f"measured  {m.latency.conditions()}")
        lines.append(f"latency   {m.latency.summary()}")
    else:
        lines.append(f"latency   {m.latency_ms:.4g} ms ({m.source})")
    if m.energy_mj is not None:
        lines.append(f"energy    {m.energy_mj:.4g} mJ ({m.energy_source})")
    elif m.energy_source != "not requested":
        lines.append(f"energy    {m.energy_source}")
    if cache is not None:
        lines.append(
            "cache     "
            + (
                "hit: measured earlier under the same conditions (--force measures again)"
                if m.cached
                else "stored"
            )
            + f" in {cache}"
        )
    return "\n".join(lines)
