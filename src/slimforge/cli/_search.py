"""``slimforge search``: multi-objective architecture search with a run store that resumes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slimforge.cli._common import (
    OptionSpec,
    add_latency_device_options,
    add_options,
    add_settings_option,
    add_thread_options,
    add_train_device_option,
    key_values,
    remote_options,
    set_torch_threads,
    thread_counts,
    train_device,
)

HELP = "search a space for the Pareto front of accuracy vs. device cost"


# fmt: off
_ACCURACY_OPTIONS: tuple[OptionSpec, ...] = (
    ("--accuracy-table", None, "CSV", ("accuracy table (index,arch,accuracy) giving 'error'; the same as "
        "--accuracy table:CSV")),
    ("--accuracy", None, "SPEC", ("accuracy source: table:FILE, supernet:DIR (a trained supernet's run "
        "directory), predictor:FILE (a saved accuracy predictor) give 'error'; proxy:NAMES (zero-cost "
        "proxies, e.g. proxy:meco,jacob_cov,num_params) gives 'proxy_score_neg'")),
    ("--data", None, "SPEC", ("data for --accuracy supernet:/proxy: (npz:FILE, cifar10:DIR, digits, ...); "
        "default: the supernet's training data, or digits for proxies")),
)
_RUN_DIR_OPTIONS: tuple[OptionSpec, ...] = (
    ("--out", None, "RUN_DIR", "run directory: store.sqlite and result.json go there"),
    ("--resume", None, None, "continue the search recorded in --out"),
    ("--wait", None, None, ("if another process is searching into --out, wait for it to finish instead of "
        "exiting")),
)
_OUTPUT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--no-progress", None, None, "no progress bar on stderr"),
    ("--json", None, None, "print the result as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default: nb201)")
    parser.add_argument(
        "--objectives",
        default="error,latency_ms",
        help=(
            "comma-separated objectives, all minimised (default: error,latency_ms): error, accuracy "
            "(from --accuracy), latency_ms, energy_mj, latency_iqr_ms (from --device), num_params, macs, "
            "peak_mem_bytes, model_bytes (from the network itself)"
        ),
    )
    add_options(parser, _ACCURACY_OPTIONS)
    add_latency_device_options(
        parser,
        "table:FILE, lut:FILE (latency lookup table), predictor:FILE (latency predictor, nb201), or "
        "measured: local-cpu, local-torch, local-litert, remote:http://HOST:PORT (cached in --out's store); "
        "gives latency_ms/energy_mj",
        default=None,
        timeout=None,
    )
    add_thread_options(parser, default=None, default_text="PyTorch's; 1 for a measured --device", split=True)
    add_train_device_option(parser)
    parser.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="EXPR",
        help="hard constraint, e.g. 'latency_ms<=5' (repeatable)",
    )
    parser.add_argument(
        "--algorithm",
        default="auto",
        help=(
            "search algorithm (default: auto, focused Pareto local search, optionally after an NSGA-II "
            "phase: --set global_evaluations=N); also nsga2, pls, regularized_evolution, random, wsea, cea "
            "(the study's baselines), bo (Bayesian optimisation; pip install 'slimforge[bo]'), rl "
            "(REINFORCE with MnasNet's reward: --set target_latency=T --set reward=soft|hard)"
        ),
    )
    add_settings_option(parser, "search algorithm", "pop_size=20")
    parser.add_argument("--budget", type=int, default=1000, help="distinct evaluations (default: 1000)")
    parser.add_argument(
        "--screen",
        metavar="SPEC",
        help="predictor-assisted search: rank each round's candidates by predictor:FILE or proxy:NAMES "
        "and evaluate only the best --screen-keep share",
    )
    parser.add_argument(
        "--screen-keep", type=float, default=0.5, metavar="F", help="share kept by --screen (default 0.5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_options(parser, _RUN_DIR_OPTIONS)
    parser.add_argument(
        "--executor", default="inprocess", help="inprocess, process or ray (default: inprocess)"
    )
    parser.add_argument("--workers", type=int, help="worker processes of the process executor")
    parser.add_argument("--address", help="Ray cluster address for --executor ray (e.g. auto)")
    add_options(parser, _OUTPUT_OPTIONS)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["pop_size=20", "iterations=null"]`` -> ``{"pop_size": 20, "iterations": None}`` (JSON values, else strings)."""
    return key_values(items, "--set", "pop_size=20")


def _device_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--token-file`` / ``--timeout`` for a remote device; the runtime's threads for a measured one."""
    options = remote_options(args)
    threads = thread_counts(args)[1]
    measured = args.device is not None and str(args.device).partition(":")[0] not in ("table", "lut", "predictor")
    if threads is not None and measured:
        options["threads"] = threads
    return options


def _accuracy_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The supernet's evaluation device (``--train-device``, checked whatever the accuracy source)."""
    device = train_device(args)
    return {"device": device} if str(args.accuracy or "").startswith("supernet:") else None


def _executor(args: argparse.Namespace) -> Any:
    from slimforge.errors import InvalidInputError
    from slimforge.search.executors import make_executor

    options: dict[str, Any] = {}
    if args.workers is not None:
        if args.executor != "process":
            raise InvalidInputError("--workers goes with --executor process")
        options["workers"] = args.workers
    if args.address is not None:
        if args.executor != "ray":
            raise InvalidInputError("--address goes with --executor ray")
        options["address"] = args.address
    if args.executor == "inprocess" and not options:
        return None
    return make_executor(args.executor, **options)


def format_front(result: Any) -> str:
    """The front as an aligned text table (one row per architecture), with the knee marked."""
    from slimforge.search.selection import knee_point

    if not result.front:
        return result.message
    knee = knee_point(result)
    # Constraint columns only for metrics that are not objectives (those are shown already).
    extra = [c for c in result.constraints if c.split()[0] not in result.objectives]
    header = ["#", *result.objectives, *extra, "arch"]
    rows = []
    for i, e in enumerate(result.front, start=1):
        mark = "*" if knee is not None and e.genome == knee.genome else ""
        values = [f"{v:.4g}" for v in e.objectives.values()] + [f"{e.constraints[c]:.4g}" for c in extra]
        rows.append([f"{i}{mark}", *values, e.arch])
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.append(f"* knee point; {result.message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from slimforge.errors import InvalidInputError
    from slimforge.io import DirectoryLock

    if args.resume and not args.out:
        raise InvalidInputError("--resume needs --out RUN_DIR (the run directory to continue)")
    if args.wait and not args.out:
        raise InvalidInputError("--wait goes with --out RUN_DIR (it waits for that directory's owner)")
    train_device(args)  # a device this machine lacks stops here, before --out is made
    set_torch_threads(args)
    if not args.out:
        return _search(args, None)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a directory for the run")
    # One process owns the run directory from before its store is opened until result.json is
    # written: two resumes of one search, or two new searches into one store, would otherwise
    # both evaluate and interleave their rows.
    with DirectoryLock(out, wait=args.wait, what="search run directory"):
        return _search(args, out)


def _search(args: argparse.Namespace, out: Path | None) -> int:
    from slimforge.io import RunStore
    from slimforge.search import build_problem, make_screen, minimize

    problem = build_problem(
        args.space,
        args.objectives,
        accuracy_table=args.accuracy_table,
        accuracy=args.accuracy,
        data=args.data,
        device=args.device,
        device_options=_device_options(args),
        accuracy_options=_accuracy_options(args),
        constraints=args.constraint,
        # Measured devices keep their figures in the run's store: a resumed or repeated search
        # does not measure a network twice under the same conditions.
        measurement_cache=out / "store.sqlite" if out is not None else None,
    )
    settings = parse_settings(args.settings)
    screen = None if args.screen is None else make_screen(problem.space, args.screen, data=args.data)
    store = None
    executor = _executor(args)
    try:
        if out is not None:
            store = RunStore(out / "store.sqlite")
        # The stage is only marked done: an interrupted or refused search leaves the store as
        # it was (plus whole evaluation rows), and --resume picks it up from there.
        result = minimize(
            problem,
            args.algorithm,
            budget=args.budget,
            seed=args.seed,
            settings=settings,
            store=store,
            executor=executor,
            resume=args.resume,
            progress=not args.no_progress,
            screen=screen,
            screen_keep=args.screen_keep,
        )
        if store is not None:
            result_path = out / "result.json"
            # Atomic: a full disk or a kill leaves the previous result.json (or none), never half.
            _write_result(result_path, result.to_dict())
            store.set_stage(
                "search",
                "done",
                {
                    "result": str(result_path),
                    "evaluations": result.num_evaluations,
                    "front": len(result.front),
                },
            )
    finally:
        if store is not None:
            store.close()
        if executor is not None:
            executor.close()
    if args.json:
        print(json.dumps(result.to_dict(include_evaluations=False), indent=1))
    else:
        print(format_front(result))
    if not result.front:
        print(f"slimforge search: {result.message}", file=sys.stderr)
    return 0


def _write_result(path: Path, data: dict[str, Any]) -> None:
    from slimforge.errors import SlimforgeError
    from slimforge.io import atomic_write_json

    try:
        atomic_write_json(path, data)
    except OSError as exc:
        raise SlimforgeError(
            f"cannot write {path} ({exc.strerror or exc}); the evaluations are in the store: free "
            "space or fix the permissions, then rerun with --resume to write it"
        ) from None
