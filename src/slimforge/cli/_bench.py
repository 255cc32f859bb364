"""``slimforge bench``: benchmark search algorithms (``bench tabular``: against a tabular oracle)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

HELP = "benchmark search algorithms against a tabular benchmark (bench tabular)"

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
    tab.add_argument(
        "--device", required=True, metavar="CSV", help="device table (index,arch,latency_ms,energy_mj)"
    )
    tab.add_argument(
        "--objectives",
        default="error,latency_ms",
        help="error,latency_ms[,energy_mj] (default: error,latency_ms)",
    )
    tab.add_argument("--algorithm", default="nsga2", help="algorithm name, or 'all' for every registered one")
    tab.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="algorithm setting (repeatable)",
    )
    tab.add_argument("--budget", type=int, default=1000, help="distinct evaluations per run (default: 1000)")
    tab.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    tab.add_argument("--repeats", type=int, default=1, help="seeds seed..seed+R-1; reports median and min")
    tab.add_argument("--json", action="store_true", help="print the result as JSON")


def _summary_rows(results: dict[str, Any]) -> str:
    header = ["algorithm", "hv_ratio", "(min)", "recall", "igd+", "evals", "wall_s", "overhead_ms"]
    rows = []
    for name, res in results.items():
        s = res.summary
        rows.append(
            [
                name,
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


def run(args: argparse.Namespace) -> int:
    from slimforge.cli._search import parse_settings
    from slimforge.errors import InvalidInputError
    from slimforge.search.algorithms import ALGORITHMS
    from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth

    if args.bench_kind != "tabular":
        raise InvalidInputError(
            "say what to benchmark: slimforge bench tabular --accuracy ACC.csv --device DEV.csv ..."
        )
    if args.algorithm == "all":
        names = [*CODESIGN_ORDER, *(n for n in ALGORITHMS.list() if n not in CODESIGN_ORDER)]
    else:
        ALGORITHMS.get(args.algorithm)  # an unknown name fails here, before the tables load
        names = [args.algorithm]
    settings = parse_settings(args.settings) or None
    if settings is not None and len(names) > 1:
        raise InvalidInputError("--set applies to one algorithm; drop it with --algorithm all")
    start = time.perf_counter()
    problem = load_tabular_problem(args.accuracy, args.device, args.objectives)
    truth = tabular_truth(problem)
    load_s = time.perf_counter() - start
    results = {}
    for name in names:
        results[name] = run_tabular_benchmark(
            args.accuracy,
            args.device,
            algorithm=name,
            budget=args.budget,
            seed=args.seed,
            repeats=args.repeats,
            settings=settings,
            problem=problem,
            truth=truth,
        )
    if args.json:
        if len(results) == 1:
            payload = {**results[names[0]].to_dict(), "load_s": load_s}
        else:
            payload = {"load_s": load_s, "algorithms": {n: r.to_dict() for n, r in results.items()}}
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
        print(f"protocol: {first.protocol}", file=sys.stderr)
    return 0
