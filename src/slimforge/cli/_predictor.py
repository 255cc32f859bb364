"""``slimforge predictor``: fit a latency (``fit``) or accuracy (``accuracy``) predictor on a few rows of a
table and score it on the rest."""

from __future__ import annotations

import argparse
import json

from slimforge.cli._common import (
    OptionSpec,
    add_options,
    add_settings_option,
    add_thread_options,
    set_torch_threads,
    table_file,
)
from slimforge.io import progress_bar

HELP = "fit a latency or accuracy predictor on a few rows of a table and score it on the others"

_DEFAULT_TRAIN = 100
_DEFAULT_TRANSFER_TRAIN = 20


# fmt: off
_FIT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--save", None, "JSON", "write the fitted predictor to this JSON file"),
    ("--no-baselines", None, None, "skip the two baselines"),
    ("--json", None, None, "print the evaluation as JSON"),
)
# fmt: on


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
        "--device-table", required=True, metavar="CSV", help="target device table (index,arch,latency_ms), CSV or table:CSV"
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
    add_options(fit, _FIT_OPTIONS)
    _add_accuracy_arguments(actions)


# fmt: off
_ACCURACY_SAMPLE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--test-sample", None, "N|all", ("score only N of the other rows (default: all of them; 1000 with "
        "--proxy-features)")),
    ("--proxy-features", "", "P,P", ("zero-cost proxies whose scores are extra features, e.g. "
        "meco,jacob_cov,num_params")),
)
_ACCURACY_OUTPUT_OPTIONS: tuple[OptionSpec, ...] = (
    ("--save", None, "JSON", "write the first run's fitted predictor to this JSON file"),
    ("--no-progress", None, None, "no progress bar on stderr"),
    ("--json", None, None, "print the report as JSON"),
)
# fmt: on


def _add_accuracy_arguments(actions) -> None:
    acc = actions.add_parser(
        "accuracy",
        help="train an accuracy predictor on a seeded sample of an accuracy table, score the other rows",
        description="Shuffle the rows of --table with --seed, fit --model on the first --train rows and "
        "report Spearman rho, Kendall tau, the overlap of the predicted and true best --top-pct %% and "
        "the fit/predict CPU seconds on the other rows (rho also on the rows whose canonical cell no "
        "training row has). Genomes are encoded in canonical form; table rows are not deduplicated. "
        "--repeats R runs seeds SEED..SEED+R-1 and reports the medians. With --proxy-features, each "
        "network's zero-cost proxy scores on one --data minibatch are extra features; as they cost CPU "
        "seconds per architecture, only --test-sample (default 1000) other rows are scored then.",
    )
    acc.add_argument("--space", default="nb201", help="search space of the table (default nb201)")
    acc.add_argument("--table", required=True, metavar="CSV", help="accuracy table (index,arch,accuracy)")
    acc.add_argument("--model", default="gbm", help="accuracy predictor: gbm (default), mlp or gp")
    acc.add_argument("--train", type=int, default=50, help="training rows (default 50)")
    acc.add_argument("--seed", type=int, default=0, help="seed of the row order and of the fit (default 0)")
    acc.add_argument(
        "--repeats", type=int, default=1, help="runs with seeds SEED..SEED+R-1, medians reported (default 1)"
    )
    add_options(acc, _ACCURACY_SAMPLE_OPTIONS)
    acc.add_argument(
        "--data",
        default=None,
        help="minibatch for --proxy-features, e.g. npz:../shared/data/cifar10_subset.npz"
    )
    acc.add_argument("--batch-size", type=int, default=16, help="images in that minibatch (default 16)")
    acc.add_argument(
        "--proxy-seed",
        type=int,
        default=0,
        help="seed of the minibatch and of the networks' initial weights "
        "(default 0, as slimforge proxy --seed 0)",
    )
    acc.add_argument(
        "--cache", default=None, metavar="DIR", help="proxy score cache (shared with slimforge proxy --cache)"
    )
    add_settings_option(acc, "accuracy predictor", "n_estimators=500 or hidden=[64,64]")
    acc.add_argument(
        "--top-pct", type=float, default=1.0, help="the best share of test rows to compare, in %% (default 1)"
    )
    acc.add_argument("--raw", action="store_true", help="encode genomes as written, not in canonical form")
    add_thread_options(acc)
    add_options(acc, _ACCURACY_OUTPUT_OPTIONS)


def _row(scores) -> str:
    return (
        f"{scores.model:<14} {scores.n_train:>6} {scores.spearman_rho:>7.4f} {scores.mape_pct:>9.2f} "
        f"{100 * scores.within_10pct_share:>8.1f} | {scores.spearman_rho_filtered:>7.4f} "
        f"{scores.mape_pct_filtered:>9.2f} {100 * scores.within_10pct_share_filtered:>8.1f}"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "accuracy":
        return _run_accuracy(args)
    return _run_fit(args)


def _run_fit(args: argparse.Namespace) -> int:
    from slimforge.errors import InvalidInputError
    from slimforge.hardware.predictors import PREDICTORS, evaluate_on_table
    from slimforge.hardware.tables import read_device_table

    if args.model not in PREDICTORS:
        PREDICTORS.get(args.model)  # raises with the known names and close matches
    if args.seed < 0:
        raise InvalidInputError(f"--seed must be a non-negative int, got {args.seed}")
    table = read_device_table(table_file(args.device_table, "--device-table", bare="ok"))
    source = read_device_table(table_file(args.source_table, "--source-table", bare="ok")) if args.source_table else None
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


_DEFAULT_PROXY_TEST_SAMPLE = 1000


def _parse_options(items: list[str]) -> dict:
    from slimforge.errors import InvalidInputError

    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--set {item!r}: write KEY=VALUE, e.g. --set n_estimators=500")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        options[key.strip()] = tuple(value) if isinstance(value, list) else value
    return options


def _test_sample(text: str | None, proxies: str) -> int | None:
    from slimforge.errors import InvalidInputError

    if text is None:
        return _DEFAULT_PROXY_TEST_SAMPLE if proxies.strip() else None
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"--test-sample {text!r}: give a number of rows or 'all'") from None


def _run_accuracy(args: argparse.Namespace) -> int:

    from slimforge.errors import InvalidInputError
    from slimforge.estimators import evaluate_accuracy_predictor

    set_torch_threads(args)
    test_sample = _test_sample(args.test_sample, args.proxy_features)
    bars: list = []  # made at the first architecture scored, so that bad input prints only its error
    last = [0]

    def progress(done: int) -> None:
        if args.no_progress:
            return
        if not bars:
            bars.append(progress_bar(None, "proxy features", "arch"))
        # ``done`` counts from 1 again in each repeat; the bar counts every architecture scored.
        bars[0].update(done - last[0] if done > last[0] else done)
        last[0] = done

    try:
        report = evaluate_accuracy_predictor(
            args.space,
            args.table,
            args.model,
            train=args.train,
            seed=args.seed,
            repeats=args.repeats,
            test_sample=test_sample,
            proxy_features=args.proxy_features,
            data=args.data,
            batch_size=args.batch_size,
            proxy_seed=args.proxy_seed,
            canonical=not args.raw,
            top_pct=args.top_pct,
            options=_parse_options(args.settings),
            cache_dir=args.cache,
            progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    if args.save:
        try:
            report.predictor.save(args.save)
        except OSError as exc:
            raise InvalidInputError(f"--save {args.save}: cannot write ({exc.strerror})") from None
    test = (
        f"all {report.table_rows - report.train} other rows"
        if report.test_sample is None
        else f"a seeded sample of {report.test_sample} of the {report.table_rows - report.train} other rows"
    )
    if args.json:
        out = report.to_dict()
        out["test"] = test
        out["saved"] = args.save
        print(json.dumps(out, indent=2))
        return 0
    features = "canonical genome" if report.canonical else "genome"
    if report.proxy_features:
        features += f" + proxies {','.join(report.proxy_features)} ({report.data}, batch {report.batch_size})"
    print(f"{report.model} on {report.table}: train {report.train} rows, test {test}")
    print(f"features: {features}")
    head = (
        f"{'seed':>6} {'rho':>7} {'tau':>7} {'rho unseen':>10} {'top':>6} {'best pred':>9} {'MAE':>6} "
        f"{'fit s':>7} {'pred s':>7}"
    )
    print(head)
    for r in report.runs:
        print(
            f"{r.seed:>6} {r.spearman_rho:7.4f} {r.kendall_tau:7.4f} {r.spearman_rho_unseen:10.4f} "
            f"{r.top_overlap:6.3f} {r.best_predicted_accuracy:9.2f} {r.mae_pct:6.2f} {r.fit_cpu_s:7.2f} "
            f"{r.predict_cpu_s:7.2f}"
        )
    if len(report.runs) > 1:
        m = report.median
        print(
            f"{'median':>6} {m('spearman_rho'):7.4f} {m('kendall_tau'):7.4f} "
            f"{m('spearman_rho_unseen'):10.4f} "
            f"{m('top_overlap'):6.3f} {m('best_predicted_accuracy'):9.2f} {m('mae_pct'):6.2f} "
            f"{m('fit_cpu_s'):7.2f} {m('predict_cpu_s'):7.2f}"
        )
    run0 = report.runs[0]
    print(
        f"top: share of the true best {run0.top_pct:g}% of test rows among the predicted best; rho unseen: "
        f"test rows whose canonical cell no training row has "
        f"({run0.num_unseen} of {run0.num_test} for seed {run0.seed})"
    )
    if report.proxy_features:
        print(f"proxy features: {report.median('proxy_cpu_s_per_arch'):.3f} CPU s/arch")
    if args.save:
        print(f"saved {args.save} (seed {run0.seed})")
    return 0
