"""``slimforge bench``: benchmarks.

``bench tabular``: a search algorithm against a tabular oracle. ``bench codesign``: the hardware
co-design study reproduced on NAS-Bench-201 (supernets per method, searched against device tables).
``bench spaces``: search spaces against hand-designed networks by INT8 fronts on this machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from slimforge.cli._common import (
    add_latency_device_options,
    add_settings_option,
    add_thread_options,
    add_train_device_option,
    set_torch_threads,
    table_file,
    thread_counts,
    train_device,
)

HELP = (
    "benchmarks: search algorithms on tabular NAS-Bench-201 (bench tabular), the co-design study "
    "(bench codesign), search spaces vs hand-designed networks on this CPU (bench spaces)"
)

# The study's baselines, side by side in its table format; `--algorithm all` adds the others.
CODESIGN_ORDER = ("nsga2", "wsea", "cea", "random")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_kind", metavar="KIND")
    tab = sub.add_parser(
        "tabular",
        help="run an algorithm with NAS-Bench-201 tables as its oracle and score the front it finds",
        description="Run an algorithm with NAS-Bench-201 tables as its oracle and score the front it finds.",
    )
    tab.add_argument("--accuracy", required=True, metavar="CSV", help="accuracy table (index,arch,accuracy)")
    add_latency_device_options(
        tab, "table:FILE, a device table (index,arch,latency_ms,energy_mj)", default=None, remote=False
    )
    tab.add_argument(
        "--objectives",
        default="error,latency_ms",
        help="error,latency_ms[,energy_mj] (default: error,latency_ms)",
    )
    tab.add_argument("--algorithm", default="nsga2", help="algorithm name, or 'all' for every registered one")
    add_settings_option(tab, "search algorithm", "pop_size=20")
    tab.add_argument("--budget", type=int, default=1000, help="distinct evaluations per run (default: 1000)")
    tab.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    tab.add_argument("--repeats", type=int, default=1, help="seeds seed..seed+R-1; reports median and min")
    tab.add_argument(
        "--checkpoints",
        default="",
        metavar="K,K,...",
        help="also score the first K evaluations of each run (e.g. 100,200: budget-K runs, since no "
        "algorithm is told its budget)",
    )
    tab.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_codesign(sub)
    _add_spaces(sub)


def _add_common(p: argparse.ArgumentParser, default_epochs: str) -> None:
    add = p.add_argument
    add("--out", required=True, metavar="DIR", help="benchmark directory (created; re-running resumes)")
    add("--data", metavar="SPEC", help="training data (default: npz:../shared/data/cifar10_subset.npz)")
    add("--epochs", type=int, help=f"training epochs of every network ({default_epochs})")
    add("--batch-size", type=int, help="training batch size")
    add("--val-fraction", type=float, help="share of the training images held out for the search")
    add_train_device_option(p)
    add_thread_options(p, default=None, default_text="PyTorch's; 1 on a busy 2-core CPU; ONNX Runtime 1",
                       split=True)
    add("--seed", type=int, help="seed of everything (default: 0)")
    add("--no-png", action="store_true", help="do not write the PNG figure(s)")
    add("--no-progress", action="store_true", help="no progress bars on stderr")
    add("--json", action="store_true", help="print the whole result as JSON")


def _add_codesign(sub: Any) -> None:
    p = sub.add_parser(
        "codesign",
        help="reproduce the co-design study on NAS-Bench-201 (supernets per method vs device tables)",
        description=(
            "Train one supernet per method, search the GDAS and SPOS supernets with WSEA, CEA and NSGA-II "
            "against each device table (error from the supernet, latency and energy from the table), and "
            "report the study's table with true accuracy from the accuracy table, plus the proxy-vs-true "
            "front figure. --preset study is the study's scale (200 epochs, ...); cpu (the default) "
            "fits a 2-core CPU."
        ),
    )
    _add_common(p, "cpu preset: 25; study: 200")
    add = p.add_argument
    add("--preset", default="cpu", help="cpu (default) or study: the scale the other settings default to")
    add(
        "--accuracy-table",
        metavar="CSV",
        help="true accuracy of reported architectures (default: ../shared/data/nb201/accuracy_cifar10.csv)",
    )
    add(
        "--device-table",
        action="append",
        metavar="CSV",
        dest="device_tables",
        help="device table (CSV or table:CSV), repeatable (default: "
        "../shared/data/nb201/device_pi5_{onnxruntime,litert}.csv)",
    )
    add("--methods", help="supernet methods (default: darts,rsps,gdas,spos)")
    add("--search-on", help="supernets to search (default: gdas,spos)")
    add("--algorithms", help="search algorithms (default: wsea,cea,nsga2)")
    add("--channels", type=int, help="supernet channels (cpu: 16; study: 16)")
    add("--cells", type=int, help="cells per stage (cpu: 2; study: 5)")
    add("--pop-size", type=int, help="GA population (50)")
    add("--iterations", type=int, help="GA generations (cpu: 10; study: 20)")
    add("--calibration", type=int, help="random architectures WSEA/CEA calibrate on (cpu: 200; study: 1000)")
    add("--eval-images", type=int, help="validation images per proxy evaluation, 0 for all (cpu: 250)")
    add("--bn-images", type=int, help="images re-calibrating batch norm per evaluation (cpu: 128)")


def _add_spaces(sub: Any) -> None:
    p = sub.add_parser(
        "spaces",
        help="compare search spaces with hand-designed networks by INT8 fronts measured on this CPU",
        description=(
            "Train a SPOS supernet per space and each hand-designed network for the same epochs, search each "
            "space for (error, INT8 latency on this CPU with ONNX Runtime), deploy the fronts and the "
            "networks in INT8 and measure them together; plot the fronts and the networks in one figure."
        ),
    )
    _add_common(p, "default: 20")
    add = p.add_argument
    add(
        "--preset",
        default="small",
        help="small (default) or study: the device experiment's settings (supernets 900 epochs, networks 300, "
        "batch 96, lr 0.025 to 0 by SPOS's linear schedule, wd 3e-4, scale study); other flags override",
    )
    add("--scale", help="small (default; CPU-sized networks) or study (20 layers, width 1.0)")
    add("--spaces", help="spaces (default: shufflenet,shufflenet-id,mbv2-id; also mbv2)")
    add("--zoo", help="hand-designed networks NAME:WIDTH,... (default: the scale's three)")
    add("--lr", type=float, help="SGD learning rate (0.025)")
    add("--weight-decay", type=float, help="weight decay (3e-4)")
    add("--algorithm", help="search algorithm (default: nsga2)")
    add("--budget", type=int, help="distinct evaluations per space (default: 120)")
    add_settings_option(p, "search algorithm", "pop_size=20")
    add("--bn-images", type=int, help="images re-calibrating batch norm (256)")
    add("--calibration-images", type=int, help="images calibrating INT8 (64)")
    add("--search-time-cap", type=float, help="seconds of timed runs per network in the search (2)")
    add("--final-time-cap", type=float, help="seconds of timed runs per network at the end (10)")
    add("--final-max", type=int, help="front networks per space deployed at the end (10)")
    add(
        "--no-retrain",
        dest="retrain",
        action="store_false",
        default=None,
        help="deploy front networks with their supernet weights instead of retraining them standalone "
        "with the zoo networks' budget (faster; not comparable with the zoo networks)",
    )


def _summary_rows(results: dict[str, Any]) -> str:
    checkpoints = sorted({k for res in results.values() for k in res.summary if k.startswith("hv_ratio@")})
    checkpoints.sort(key=lambda k: int(k.split("@")[1]))
    header = [
        "algorithm",
        *checkpoints,
        "hv_ratio",
        "(min)",
        "recall",
        "igd+",
        "evals",
        "wall_s",
        "overhead_ms",
    ]
    rows = []
    for name, res in results.items():
        s = res.summary
        rows.append(
            [
                name,
                *(f"{s[k]['median']:.3f}" if k in s else "-" for k in checkpoints),
                f"{s['hv_ratio']['median']:.3f}",
                f"{s['hv_ratio']['min']:.3f}",
                f"{s['front_recall']['median']:.2f}",
                f"{s['igd_plus']['median']:.4f}",
                f"{s['num_evaluations']['median']:.0f}",
                f"{s['wall_s']['median']:.2f}",
                f"{s['overhead_ms_per_eval']['median']:.3f}",
            ]
        )
    return _table(header, rows)


def _codesign_rows(results: dict[str, Any]) -> str:
    header = ["algorithm", "accuracy_%", "latency_ms", "energy_mj", "knee arch (seed %d)"]
    rows = []
    for name, res in results.items():
        knee = res.runs[0].knee
        if knee is None:
            rows.append([name, "-", "-", "-", "no feasible architecture"])
            continue
        energy = knee.get("energy_mj")
        rows.append(
            [
                name,
                f"{knee['accuracy']:.2f}" if "accuracy" in knee else "-",
                f"{knee['latency_ms']:.3f}" if "latency_ms" in knee else "-",
                "-" if energy is None else f"{energy:.3f}",
                knee["arch"],
            ]
        )
    seed = next(iter(results.values())).seeds[0]
    header[-1] = header[-1] % seed
    return _table(header, rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _alone_under_torchrun() -> bool:
    """Whether this process runs the benchmark: always without torchrun; under it rank 0 alone.

    A benchmark is one process's work (its training is not data-parallel): the other ranks leave at
    once, and rank 0 runs as if started alone, so the training inside joins no process group.
    """
    import os
    import sys

    from slimforge.training.distributed import env_rank

    rank, world, _ = env_rank()
    if world == 1:
        return True
    if rank != 0:
        return False
    print(
        f"slimforge bench: runs in one process; under torchrun rank 0 runs it and the other {world - 1} "
        "exit (data-parallel training is 'slimforge run' and 'slimforge supernet train')",
        file=sys.stderr,
    )
    os.environ.update(WORLD_SIZE="1", RANK="0", LOCAL_RANK="0")
    return True


def run(args: argparse.Namespace) -> int:
    from slimforge.cli._search import parse_settings
    from slimforge.errors import InvalidInputError, MissingDependencyError
    from slimforge.search.algorithms import ALGORITHMS
    from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth

    if not _alone_under_torchrun():
        return 0
    if args.bench_kind in ("codesign", "spaces"):
        return _run_study(args)
    if args.bench_kind != "tabular":
        raise InvalidInputError(
            "say what to benchmark: slimforge bench tabular|codesign|spaces ... (see slimforge bench --help)"
        )
    if args.algorithm == "all":
        names = [*CODESIGN_ORDER, *(n for n in ALGORITHMS.list() if n not in CODESIGN_ORDER)]
    else:
        ALGORITHMS.get(args.algorithm)  # an unknown name fails here, before the tables load
        names = [args.algorithm]
    settings = parse_settings(args.settings) or None
    if settings is not None and len(names) > 1:
        raise InvalidInputError("--set applies to one algorithm; drop it with --algorithm all")
    checkpoints = _parse_counts(args.checkpoints, "--checkpoints")
    if args.device is None:
        raise InvalidInputError("bench tabular needs --device table:FILE (a device table)")
    device = table_file(args.device)
    start = time.perf_counter()
    problem = load_tabular_problem(args.accuracy, device, args.objectives)
    truth = tabular_truth(problem)
    load_s = time.perf_counter() - start
    results = {}
    skipped = []
    for name in names:
        try:
            results[name] = run_tabular_benchmark(
                args.accuracy,
                device,
                algorithm=name,
                budget=args.budget,
                seed=args.seed,
                repeats=args.repeats,
                settings=settings,
                problem=problem,
                truth=truth,
                checkpoints=[k for k in checkpoints if k <= args.budget] if len(names) > 1 else checkpoints,
            )
        except MissingDependencyError as exc:
            if len(names) == 1:
                raise
            # `all` runs what is installed and says what it left out.
            skipped.append(f"{name} skipped: {exc}")
    notes = [n for r in results.values() for n in r.notes] + skipped
    names = [n for n in names if n in results]
    if args.json:
        if len(results) == 1 and not skipped:
            payload = {**results[names[0]].to_dict(), "load_s": load_s}
        else:
            payload = {
                "load_s": load_s,
                "algorithms": {n: r.to_dict() for n, r in results.items()},
                "skipped": skipped,
            }
        print(json.dumps(payload, indent=1))
    else:
        first = results[names[0]]
        print(
            f"{first.num_rows:,} rows, {first.num_distinct:,} distinct networks, true front {first.true_front_size}; "
            f"budget {args.budget}, seeds {first.seeds[0]}..{first.seeds[-1]} (median; min in brackets)"
        )
        print(_summary_rows(results))
        print()
        print("knee point per algorithm (co-design study format):")
        print(_codesign_rows(results))
        for note in notes:
            print(f"note: {note}")
        print(f"protocol: {first.protocol}", file=sys.stderr)
    return 0


def _run_study(args: argparse.Namespace) -> int:
    """``bench codesign`` / ``bench spaces``: build the config, run, print the table or JSON."""
    set_torch_threads(args)
    train_device(args)  # --train-device cuda without a GPU stops here, before the directory is made
    common = {
        "data": args.data,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "val_fraction": args.val_fraction,
        "train_device": args.train_device,
        "seed": args.seed,
        "png": False if args.no_png else None,
    }
    if args.bench_kind == "codesign":
        from slimforge.bench import CodesignConfig, run_codesign

        config = CodesignConfig.from_preset(
            args.preset,
            **common,
            accuracy_table=args.accuracy_table,
            device_tables=None if args.device_tables is None else [
                table_file(t, "--device-table", bare="ok") for t in args.device_tables
            ],
            methods=args.methods,
            search_on=args.search_on,
            algorithms=args.algorithms,
            channels=args.channels,
            cells_per_stage=args.cells,
            pop_size=args.pop_size,
            iterations=args.iterations,
            num_calibration=args.calibration,
            eval_images=args.eval_images,
            bn_images=args.bn_images,
        )
        result = run_codesign(config, args.out, progress=not args.no_progress)
    else:
        from slimforge.cli._search import parse_settings
        from slimforge.bench import SpacesConfig, run_spaces_bench
        from slimforge.bench import DEFAULT_SEARCH_SETTINGS

        given = {
            **common,
            "scale": args.scale,
            "spaces": args.spaces,
            "zoo": args.zoo,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "algorithm": args.algorithm,
            "budget": args.budget,
            "bn_images": args.bn_images,
            "calibration_images": args.calibration_images,
            "search_time_cap_s": args.search_time_cap,
            "final_time_cap_s": args.final_time_cap,
            "final_max": args.final_max,
            "retrain": args.retrain,
            "threads": thread_counts(args)[1],
        }
        settings = parse_settings(args.settings)
        if settings:
            given["settings"] = {**DEFAULT_SEARCH_SETTINGS, **settings}
        config = SpacesConfig.from_preset(args.preset, **given)
        result = run_spaces_bench(config, args.out, progress=not args.no_progress)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.format_table())
        print()
        written = ", ".join(str(Path(args.out) / f) for f in result.files.values())
        print(f"wrote {written} ({result.wall_s:.0f} s)")
    return 0


def _parse_counts(text: str, flag: str) -> list[int]:
    """``"100,200"`` -> ``[100, 200]``; anything else is a one-line error naming the flag."""
    from slimforge.errors import InvalidInputError

    out = []
    for item in (t.strip() for t in (text or "").split(",")):
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise InvalidInputError(f"{flag} {text!r}: give positive evaluation counts, e.g. {flag} 100,200")
        out.append(int(item))
    return out
