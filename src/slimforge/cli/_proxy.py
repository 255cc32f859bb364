"""``slimforge proxy``: rank correlation of zero-cost proxies with a ground-truth accuracy table."""

from __future__ import annotations

import argparse
import json

from slimforge.cli._common import OptionSpec, add_options, add_thread_options, set_torch_threads
from slimforge.io import progress_bar

HELP = "score a seeded sample of a space with zero-cost proxies and compare with a ground-truth table"


# fmt: off
_OUTPUT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--scores", None, None, "with --json, include every architecture's scores"),
    ("--no-progress", None, None, "no progress bar on stderr"),
    ("--json", None, None, "print the report as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument(
        "--data", required=True, help="data spec of the minibatch, e.g. npz:../shared/data/cifar10_subset.npz"
    )
    parser.add_argument(
        "--proxies", default="synflow,naswot", help="comma-separated proxies (default synflow,naswot)"
    )
    parser.add_argument(
        "--table", required=True, help="CSV with arch and accuracy columns (the ground truth)"
    )
    parser.add_argument(
        "--sample", type=int, default=1000, help="architectures drawn from the table (default 1000)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the sample, the minibatch and the initial weights"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images in the minibatch (default 64)")
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="RULE:P+P",
        help="also report an ensemble, e.g. rank_average:naswot+synflow or vote:synflow+naswot+jacob_cov "
        "(weights: rank_average:meco=2+num_params); repeatable",
    )
    parser.add_argument(
        "--raw", action="store_true", help="score genomes as written, not their canonical networks"
    )
    parser.add_argument(
        "--nonfinite",
        choices=("drop", "order"),
        default="drop",
        help="NaN/inf scores: leave them out of the ranking (drop, default) or rank ±inf at the ends",
    )
    parser.add_argument(
        "--cache", default=None, metavar="DIR", help="cache per-architecture scores as CSV under DIR"
    )
    add_thread_options(parser)
    add_options(parser, _OUTPUT_OPTIONS)


def run(args: argparse.Namespace) -> int:
    from slimforge.estimators import evaluate_proxies

    set_torch_threads(args)
    bar = progress_bar(args.sample, "proxy", "arch", enabled=not args.no_progress)
    try:
        report = evaluate_proxies(
            args.space,
            args.data,
            args.proxies,
            args.table,
            sample=args.sample,
            seed=args.seed,
            batch_size=args.batch_size,
            canonical=not args.raw,
            ensembles=args.ensemble,
            nonfinite=args.nonfinite,
            cache_dir=args.cache,
            progress=lambda done: bar.update(done - bar.n),
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_dict(with_scores=args.scores), indent=2))
        return 0
    print(
        f"{report.space}: {report.sample} architectures of {report.table} (seed {report.seed}), "
        f"batch {report.batch_size}, {'canonical' if report.canonical else 'raw'} networks, non-finite: {report.nonfinite}"
    )
    width = max(len(r.name) for r in report.rows)
    print(
        f"{'proxy':<{width}}  {'rho':>7}  {'tau':>7}  {'ranked':>6}  {'nan':>4}  {'inf':>4}  {'skip':>4}  {'cpu s/arch':>10}"
    )
    for r in report.rows:
        print(
            f"{r.name:<{width}}  {r.spearman_rho:7.4f}  {r.kendall_tau:7.4f}  {r.num_archs:6d}  {r.num_nan:4d}  "
            f"{r.num_inf:4d}  {r.num_skipped:4d}  {r.cpu_s_per_arch:10.3f}"
        )
    return 0
