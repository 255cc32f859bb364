"""``slimforge lut``: build a latency lookup table of a space on a device, predict with it, benchmark it."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from slimforge.cli._common import (
    OptionSpec,
    add_latency_device_options,
    add_options,
    add_space_arg_option,
    add_subcommand,
    add_thread_options,
    key_values,
)
from slimforge.errors import InvalidInputError

HELP = "latency lookup tables: build one for a space on a device, predict a genome's latency, evaluate it"


# fmt: off
_SPACE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--resolution", None, "N", "space option: input side in pixels (32 = the CIFAR configuration)"),
    ("--width", None, "W", "space option: width multiplier"),
)
# fmt: on


def _space_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="mbv2", help="layer-wise search space (default mbv2)")
    add_options(p, _SPACE_OPTIONS)
    add_space_arg_option(p)


def _measure_arguments(p: argparse.ArgumentParser, cap: str) -> None:
    add_latency_device_options(
        p,
        "local-cpu, local-torch, local-litert, local-openvino, local-executorch or "
        "remote:http://HOST:PORT[#RUNTIME]; the table records the runtime and is refused for another",
    )
    add_thread_options(p)
    p.add_argument(
        "--time-cap", default=cap, metavar="S", help=f"seconds at most per measurement (default {cap})"
    )


def _calibrate_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--calibrate",
        default="0",
        metavar="N",
        help="measure N whole networks and calibrate the table's sums on them (default 0: off)",
    )
    p.add_argument(
        "--calibration",
        default="scale",
        choices=("scale", "affine"),
        help="scale: sums times the median measured/predicted of N sampled networks (default); affine: "
        "measured = a x sum + b fitted on the cheapest, the dearest and N-2 networks spread between (N >= 3)",
    )


# fmt: off
_BUILD_OPTIONS: tuple[OptionSpec, ...] = (
    ("--input", None, "SHAPE", "network input (default: the space's, e.g. 1x3x32x32)"),
    ("--num-classes", "10", "K", "classifier outputs (default 10)"),
)
_PREDICT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--runtime", None, "NAME", "refuse a table measured with another runtime (e.g. litert)"),
    ("--json", None, None, "print JSON"),
)
_EVAL_TABLE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--table", None, "FILE.csv", "the table to evaluate (default: build one first)"),
    ("--save-table", None, "FILE.csv", "keep the table built for the evaluation"),
)
_EVAL_OPTIONS: tuple[OptionSpec, ...] = (
    ("--sample", "100", "N", "number of sub-networks (default 100)"),
    ("--seed", "0", "S", "seed of the sample (default 0)"),
    ("--chunk", "10", "N", "networks measured interleaved at a time (default 10)"),
    ("--json", None, None, "print the evaluation as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lut_command", metavar="ACTION")
    build = add_subcommand(
        sub,
        "build",
        "measure every choice of every layer (and the fixed parts) in isolation",
        "Measure every choice of every layer of --space (and the fixed stem and head) in isolation on "
        "--device and write the latency lookup table to --out.",
    )
    _space_arguments(build)
    _measure_arguments(build, "3")
    add_options(build, _BUILD_OPTIONS)
    build.add_argument("--out", required=True, metavar="FILE.csv", help="where to write the table")
    _calibrate_argument(build)
    build.add_argument("--json", action="store_true", help="print a JSON summary")
    predict = add_subcommand(sub, "predict", "predict the latency of genomes from a table")
    predict.add_argument(
        "--table", required=True, metavar="FILE.csv", help="a table from `slimforge lut build`"
    )
    predict.add_argument(
        "genomes",
        nargs="+",
        metavar="GENOME",
        help="architecture strings of the table's space (e.g. k3e6-k5e3-id-...) "
        "or comma-separated choice indices",
    )
    add_options(predict, _PREDICT_OPTIONS)
    ev = add_subcommand(sub, "eval", "benchmark: LUT-predicted vs measured latency of sampled sub-networks")
    _space_arguments(ev)
    _measure_arguments(ev, "3")
    add_options(ev, _EVAL_TABLE_OPTIONS)
    _calibrate_argument(ev)
    add_options(ev, _EVAL_OPTIONS)


def run(args: argparse.Namespace) -> int:
    if args.lut_command is None:
        raise InvalidInputError(
            "give an action: slimforge lut build | predict | eval (see slimforge lut --help)"
        )
    return {"build": _build, "predict": _predict, "eval": _eval}[args.lut_command](args)


def space_options(args: argparse.Namespace) -> dict[str, Any]:
    """The space's constructor options from ``--resolution``, ``--width`` and ``--space-arg``."""
    from slimforge.cli._profile import parse_int

    options: dict[str, Any] = {}
    if args.resolution is not None:
        options["resolution"] = parse_int("--resolution", args.resolution, 1)
    if args.width is not None:
        try:
            options["width"] = float(args.width)
        except ValueError:
            raise InvalidInputError(f"--width must be a number such as 0.5, got {args.width!r}") from None
    options.update(key_values(args.space_arg, "--space-arg", "stage_depths=[2,2,2,2,2,1]"))
    return options


def _protocol(args: argparse.Namespace, base: Any) -> Any:
    import dataclasses

    from slimforge.cli._profile import parse_seconds

    cap = parse_seconds("--time-cap", args.time_cap)
    # A cap below the minimum timed duration would leave every figure flagged unstable.
    return dataclasses.replace(base, time_cap_s=cap, min_time_s=min(base.min_time_s, cap))


def _device(args: argparse.Namespace) -> Any:
    from slimforge.cli._measure import open_device

    return open_device(args.device, args.token_file, args.timeout)


def _build_table(args: argparse.Namespace) -> Any:
    from slimforge.cli._profile import parse_int
    from slimforge.hardware.lut import LUT_PROTOCOL, build_lut, calibrate_lut

    calibrate = parse_int("--calibrate", args.calibrate, 0)
    if args.calibration == "affine" and calibrate < 3:  # before the table is measured, not after
        raise InvalidInputError(
            f"--calibration affine fits a line through whole-network measurements and needs --calibrate N "
            f"with N >= 3, got --calibrate {calibrate}"
        )
    device = _device(args)
    threads = parse_int("--threads", args.threads, 1)
    table = build_lut(
        args.space,
        device,
        space_options=space_options(args),
        input_shape=getattr(args, "input", None),
        threads=threads,
        num_classes=parse_int("--num-classes", getattr(args, "num_classes", "10"), 1),
        protocol=_protocol(args, LUT_PROTOCOL),
        progress=True,
    )
    if calibrate:
        # Seeded apart from `lut eval`'s sample (seed 0, ...), so calibration and test differ.
        table = calibrate_lut(
            table,
            device,
            networks=calibrate,
            threads=threads,
            seed=10_000,
            progress=True,
            form=args.calibration,
        )
    return table


def _build(args: argparse.Namespace) -> int:
    table = _build_table(args)
    path = table.save(args.out)
    summary = {
        "table": str(path),
        "space": table.space,
        "space_options": table.space_options,
        "entries": len(table.entries),
        "unstable_entries": table.num_unstable,
        "header": table.header,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        h = table.header
        print(
            f"wrote {path}: {len(table.entries)} entries for {table.space} {table.space_options or ''} at "
            f"{h['input_shape']} on {h['device']} "
            f"({h['runtime']} {h['runtime_version']}, {h['threads']} thread(s))"
        )
        if table.num_unstable:
            print(
                f"note: {table.num_unstable} entries stayed above the spread threshold "
                f"(load {h['load_average']}); "
                "rebuild on a quieter machine for tighter figures"
            )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from slimforge.hardware.lut import read_lut, space_from_table

    table = read_lut(args.table, runtime=args.runtime)
    space = space_from_table(table)
    rows = []
    for text in args.genomes:
        if re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
            genome = space.validate([int(t) for t in text.split(",")])
        else:
            genome = space.from_string(text)
        rows.append(
            {"arch": space.to_string(genome), "genome": list(genome), "latency_ms": table.predict(genome)}
        )
    if args.json:
        print(json.dumps({"table": args.table, "conditions": table.header, "predictions": rows}, indent=2))
    else:
        h = table.header
        print(
            f"# {h['device']}, {h['runtime']} {h['runtime_version']}, {h['threads']} thread(s), "
            f"input {h['input_shape']}"
        )
        for row in rows:
            print(f"{row['latency_ms']:.4f} ms  {row['arch']}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int
    from slimforge.hardware.lut import read_lut
    from slimforge.hardware.lut_eval import EVAL_PROTOCOL, evaluate_lut

    sample = parse_int("--sample", args.sample, 2)
    seed = parse_int("--seed", args.seed, 0)
    chunk = parse_int("--chunk", args.chunk, 1)
    if args.table is not None:
        table = read_lut(args.table)
    else:
        table = _build_table(args)
        if args.save_table:
            table.save(args.save_table)
    result = evaluate_lut(
        table,
        sample=sample,
        seed=seed,
        device=_device(args),
        protocol=_protocol(args, EVAL_PROTOCOL),
        chunk=chunk,
        progress=True,
    )
    print(result.to_json() if args.json else format_evaluation(result))
    return 0


def format_evaluation(r: Any) -> str:
    """The human report of a :class:`~slimforge.hardware.lut_eval.LutEvaluation`."""

    def line(name: str, a: Any) -> str:
        return (
            f"{name:<22} {100 * a.within_10pct_share:6.1f}%  {a.spearman_rho:7.4f}  "
            f"{100 * a.median_abs_rel_error:8.1f}%  {100 * a.mean_rel_error:+8.1f}%"
        )

    return "\n".join(
        [
            (
                f"{r.num_models} {r.space} networks {r.space_options or ''} (seed {r.seed}) at "
                f"{'x'.join(map(str, r.input_shape))} on {r.device}, {r.threads} thread(s)"
            ),
            f"load average {r.load_average}",
            f"{'':<22} {'±10%':>7}  {'Spearman':>7}  {'med|err|':>9}  {'bias':>9}",
            line("LUT vs measured", r.lut),
            line("noise floor (re-run)", r.noise),
            line("LUT vs measured (min)", r.lut_min),
            line("noise floor (min)", r.noise_min),
            (
                f"repeated median within the first IQR: {100 * r.repeat_within_iqr_share:.1f}% of networks; "
                f"unstable measurements {r.unstable_measurements}/{2 * r.num_models}, "
                f"unstable table entries {r.lut_unstable_entries}"
            ),
        ]
    )
