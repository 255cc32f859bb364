"""``slimforge run CONFIG.yaml``: the whole design run, resumable, ending with a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slimforge.cli._common import (
    add_mlflow_option,
    add_thread_options,
    add_train_device_option,
    mlflow_log,
    train_device,
    with_mlflow,
)

HELP = "design a network end to end from a YAML config: supernet, search per device, retrain, compress, measure, report"


_AUTO_THREADS = (
    "auto: the fastest for training on this machine now, timed at start; latency is measured with each device's "
    "own threads"
)


def add_run_options(parser: argparse.ArgumentParser, *, threads: str = "auto", threads_text: str = _AUTO_THREADS) -> None:
    """The options ``run`` and ``demo`` share; ``threads`` is the default of ``--threads``."""
    parser.add_argument("--print-config", action="store_true", help="print the config with every default and exit")
    parser.add_argument(
        "--explain", action="store_true", help="with --print-config: every key's type, default and allowed values "
        "(Markdown, as docs/config.md)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the config (names, settings, devices reached, data readable) and show what each stage "
        "would do (run, resume, reuse, re-run) without training anything",
    )
    add_thread_options(parser, default=threads, default_text=threads_text)
    add_train_device_option(parser, default=None)
    parser.add_argument(
        "--stop-after", metavar="STAGE", help="stop once this stage is done (e.g. supernet, search:cpu, select)"
    )
    parser.add_argument("--wait", action="store_true", help="wait for another process using the run directory")
    add_mlflow_option(
        parser, "when the run ends, log it to MLflow (config, stage metrics, Pareto fronts, report, models); URI "
        "defaults to a file store beside the run directory (needs slimforge[mlflow])",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress on stderr (default: bars on a terminal, "
        "otherwise one plain line per stage every ~10 s)"
    )
    parser.add_argument("--json", action="store_true", help="print the result (summary, regressions) as JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="the run's config (see README, 'slimforge run')")
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default: runs/<config file name>); re-run to resume"
    )
    add_run_options(parser)


def execute(config: Any, out: Path, args: argparse.Namespace, *, again: str = "") -> int:
    """Check or run ``config`` into ``out`` as the shared options say; print the summary or JSON.

    Under ``torchrun`` every process runs the pipeline (it trains data-parallel) and rank 0 alone
    prints; ``--print-config`` and ``--check`` are rank 0's alone.
    """
    from slimforge.hardware.threads import check_thread_count
    from slimforge.runs import RunAborted, check_run, dump_config, run_pipeline
    from slimforge.training.distributed import is_main_process

    if not is_main_process() and (args.print_config or args.check):
        return 0

    threads = None if args.threads == "auto" else check_thread_count(args.threads)
    if getattr(args, "train_device", None):
        import dataclasses

        if not args.print_config:
            train_device(args)  # a device this machine lacks: one line naming --train-device, nothing written
        config = dataclasses.replace(config, train_device=args.train_device)
    if args.print_config:
        if args.explain:
            from slimforge.runs.config import explain_config

            print(explain_config(), end="")
            return 0
        print(dump_config(config), end="")
        return 0
    if args.check:
        planned = check_run(config, out if out.exists() else None)
        if args.json:
            print(json.dumps({"ok": True, "stages": {p.stage.key: p.action for p in planned}}, indent=1))
        else:
            print(f"config OK; in {out}:")
            for p in planned:
                print(f"  {p.stage.key:<16} {p.action}")
        return 0
    if args.mlflow is not None:
        _check_mlflow()
    try:
        result = run_pipeline(config, out, progress=not args.no_progress, stop_after=args.stop_after,
                              threads=threads, wait=args.wait)
    except RunAborted:
        return 2  # a rank other than 0: rank 0 printed why
    if not is_main_process():
        return 0
    logged = mlflow_log(args, out)
    if args.json:
        print(json.dumps(with_mlflow(result.to_dict(), logged), indent=1))
        return 0
    print(result.summary.format())
    print(f"run directory: {result.run_dir}{again}")
    if result.world_size > 1:
        print(f"trained data-parallel on {result.world_size} processes (torchrun)")
    if logged is not None:
        print(f"mlflow: run {logged.run_id} in {logged.uri}")
    return 0


def _check_mlflow() -> None:
    """A missing MLflow is said before hours of training, not after."""
    import importlib.util

    from slimforge.errors import MissingDependencyError

    if importlib.util.find_spec("mlflow") is None:
        raise MissingDependencyError("--mlflow needs MLflow: pip install 'slimforge[mlflow]'")


def run(args: argparse.Namespace) -> int:
    from slimforge.runs import load_config

    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    return execute(config, out, args)
