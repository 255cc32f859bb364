"""``slimforge report RUN_DIR``: write the run's self-contained HTML report and PNG figures."""

from __future__ import annotations

import argparse
import json

from slimforge.cli._common import add_mlflow_option, mlflow_log, with_mlflow

HELP = "write RUN_DIR/report.html (interactive, offline) and figures/*.png for a finished or unfinished run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `slimforge run`")
    parser.add_argument("--no-png", action="store_true", help="write only the HTML, no PNG figures")
    add_mlflow_option(
        parser,
        "also log the run to MLflow (config, stage metrics, Pareto fronts, report, models); "
        "URI defaults to a file store beside RUN_DIR (needs slimforge[mlflow])",
    )
    parser.add_argument("--json", action="store_true", help="print the written paths and sections as JSON")


def run(args: argparse.Namespace) -> int:
    from slimforge.report import render_report

    result = render_report(args.run_dir, png=not args.no_png)
    logged = mlflow_log(args, args.run_dir)
    if args.json:
        print(json.dumps(with_mlflow(result.to_dict(), logged), indent=2))
        return 0
    print(f"report: {result.html_path}")
    for path in result.png_paths:
        print(f"figure: {path}")
    for key, reason in result.sections_missing.items():
        print(f"not shown: {key}: {reason}")
    if logged is not None:
        print(f"mlflow: run {logged.run_id} in {logged.uri} ({len(logged.artifacts)} artifacts)")
    return 0
