"""``slimforge predictor``: fit a latency predictor on a device table and score it on the rest."""

from __future__ import annotations

import argparse
import json

HELP = "fit a latency predictor on a few rows of a device table and score it on the others"

_DEFAULT_TRAIN = 100
_DEFAULT_TRANSFER_TRAIN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = actions.add_parser(
        "fit",
        help="train on a seeded sample of a device table, score every other architecture",
        description="Train on --train architectures drawn with --seed from --device-table and report "
        "Spearman rho, MAPE and the share within +-10%% on every other architecture, next to two "
        "baselines (a line in MACs; gradient boosting on the one-hot genome). With --source-table: "
        "transfer from that device's full table plus --train (default 20) target measurements.",
    )
    fit.add_argument(
        "--device-table", required=True, metavar="CSV", help="target device table (index,arch,latency_ms)"
    )
    fit.add_argument(
        "--train",
        type=int,
        default=None,
        metavar="N",
        help="training architectures (default 100; 20 with --source-table)",
    )
    fit.add_argument(
        "--seed", type=int, default=0, help="seed of the training sample and of the fit (default 0)"
    )
    fit.add_argument(
        "--source-table",
        default=None,
        metavar="CSV",
        help="a second device's full table: the transfer setting",
    )
    fit.add_argument(
        "--model",
        default="ridge",
        help="predictor name (default ridge); with --source-table, the source device's model",
    )
    fit.add_argument(
        "--network",
        choices=("auto", "timed", "own"),
        default="auto",
        help="read a row's latency as that of the network the benchmark timed for the row's "
        "isomorphism class (timed), of the row's own cell (own), or decide from the table: timed "
        "when it holds one figure per class, as HW-NAS-Bench tables do (auto, default)",
    )
    fit.add_argument(
        "--save", default=None, metavar="JSON", help="write the fitted predictor to this JSON file"
    )
    fit.add_argument("--no-baselines", action="store_true", help="skip the two baselines")
    fit.add_argument("--json", action="store_true", help="print the evaluation as JSON")


def _row(scores) -> str:
    return (
        f"{scores.model:<14} {scores.n_train:>6} {scores.spearman_rho:>7.4f} {scores.mape_pct:>9.2f} "
        f"{100 * scores.within_10pct_share:>8.1f} | {scores.spearman_rho_filtered:>7.4f} "
        f"{scores.mape_pct_filtered:>9.2f} {100 * scores.within_10pct_share_filtered:>8.1f}"
    )


def run(args: argparse.Namespace) -> int:
    from slimforge.errors import InvalidInputError
    from slimforge.hardware.predictors import PREDICTORS, evaluate_on_table
    from slimforge.hardware.tables import read_device_table

    if args.model not in PREDICTORS:
        PREDICTORS.get(args.model)  # raises with the known names and close matches
    if args.seed < 0:
        raise InvalidInputError(f"--seed must be a non-negative int, got {args.seed}")
    table = read_device_table(args.device_table)
    source = read_device_table(args.source_table) if args.source_table else None
    train = args.train if args.train is not None else (_DEFAULT_TRANSFER_TRAIN if source else _DEFAULT_TRAIN)
    evaluation, predictor = evaluate_on_table(
        table,
        model=args.model,
        train_size=train,
        seed=args.seed,
        source_table=source,
        network=args.network,
        baselines=not args.no_baselines,
    )
    if args.save:
        try:
            predictor.save(args.save)
        except OSError as exc:
            raise InvalidInputError(f"--save {args.save}: cannot write ({exc.strerror})") from None
    if args.json:
        out = evaluation.to_dict()
        out["saved"] = args.save
        print(json.dumps(out, indent=2))
        return 0
    print(f"table {evaluation.table}  network={evaluation.network}  seed={evaluation.seed}")
    if evaluation.source_table:
        rho = evaluation.source_target_spearman_rho
        print(f"source {evaluation.source_table}  (source vs target Spearman rho {rho:.4f})")
    threshold = evaluation.model.min_latency_ms_filtered
    print(f"{'':<14} {'':>6} {'all rows':^26} | {f'rows >= {threshold:.3f} ms':^26}")
    stats = f"{'rho':>7} {'MAPE %':>9} {'+-10% %':>8}"
    print(f"{'model':<14} {'train':>6} {stats} | {stats}")
    for scores in (evaluation.model, *evaluation.baselines):
        print(_row(scores))
    if args.save:
        print(f"saved {args.save}")
    return 0
