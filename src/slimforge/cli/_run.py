"""``slimforge run CONFIG.yaml``: the whole design run, resumable, ending with a report."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "design a network end to end from a YAML config: supernet, search per device, retrain, compress, measure, report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="the run's config (see README, 'slimforge run')")
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default: runs/<config file name>); re-run to resume"
    )
    parser.add_argument(
        "--stop-after", metavar="STAGE", help="stop once this stage is done (e.g. supernet, search:cpu, select)"
    )
    parser.add_argument("--print-config", action="store_true", help="print the config with every default and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slimforge.runs import dump_config, load_config, run_pipeline

    config = load_config(args.config)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    result = run_pipeline(config, out, progress=not args.no_progress and sys.stderr.isatty(), stop_after=args.stop_after)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(result.summary.format())
        print(f"run directory: {result.run_dir}")
    return 0
