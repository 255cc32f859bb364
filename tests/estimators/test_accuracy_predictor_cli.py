"""Accuracy-predictor experiments: ``evaluate_accuracy_predictor`` and ``slimforge predictor accuracy``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.estimators import (
    AccuracyPredictor,
    PredictorReport,
    evaluate_accuracy_predictor,
    read_accuracy_table,
)
from slimforge.spaces import get_space

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TABLE = DATA / "nb201" / "accuracy_cifar10.csv"
NPZ = DATA / "cifar10_subset.npz"

pytestmark = pytest.mark.skipif(
    not TABLE.is_file(), reason=f"NAS-Bench-201 accuracy table not found at {TABLE} (shared data absent)"
)


@pytest.fixture(scope="module")
def table():
    return read_accuracy_table(TABLE, get_space("nb201"))


@pytest.mark.slow
def test_gbm_ranks_held_out_rows_and_is_deterministic(table):
    small = {"n_estimators": 60}  # fewer trees than the default 300: the test stays fast
    kwargs = dict(train=30, test_sample=400, options=small)
    report = evaluate_accuracy_predictor("nb201", table, "gbm", seed=3, **kwargs)
    (run,) = report.runs
    assert run.seed == 3 and run.num_test == 400 and report.train == 30
    assert run.spearman_rho > 0.6 and run.kendall_tau > 0.4  # about 0.8 / 0.6 in practice
    assert 0 < run.num_unseen <= 400 and np.isfinite(run.spearman_rho_unseen)
    assert 0.0 <= run.top_overlap <= 1.0 and run.best_predicted_accuracy <= run.best_accuracy
    assert run.mae_pct > 0 and run.fit_cpu_s >= 0 and run.predict_cpu_s >= 0 and run.proxy_cpu_s_per_arch == 0
    again = evaluate_accuracy_predictor("nb201", table, "gbm", seed=3, **kwargs)
    assert again.runs[0].spearman_rho == run.spearman_rho
    assert again.runs[0].top_overlap == run.top_overlap
    other = evaluate_accuracy_predictor("nb201", table, "gbm", seed=4, **kwargs)
    assert other.runs[0].spearman_rho != run.spearman_rho


@pytest.mark.slow
def test_repeats_give_one_run_per_seed_and_medians_that_round_trip(table):
    report = evaluate_accuracy_predictor(
        "nb201", table, "gp", train=20, seed=7, repeats=3, test_sample=100, top_pct=10.0
    )
    assert report.seeds == (7, 8, 9)
    rhos = [r.spearman_rho for r in report.runs]
    assert report.median("spearman_rho") == pytest.approx(float(np.median(rhos)))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["median"]["spearman_rho"] == pytest.approx(float(np.median(rhos)))
    back = PredictorReport.from_dict(data)
    assert back.runs == report.runs and back.options == report.options and back.predictor is None


@pytest.mark.slow
def test_proxy_features_on_a_test_sample_use_the_cache(table, tmp_path):
    if not NPZ.is_file():
        pytest.skip(f"CIFAR-10 subset not found at {NPZ}")
    kwargs = dict(
        train=12,
        seed=1,
        test_sample=10,
        proxy_features="num_params",
        data=f"npz:{NPZ}",
        batch_size=4,
        cache_dir=tmp_path,
        options={"n_estimators": 30},
    )
    report = evaluate_accuracy_predictor("nb201", table, "gbm", **kwargs)
    assert report.proxy_features == ("num_params",) and report.predictor.extra_features == ("num_params",)
    assert report.runs[0].num_test == 10 and report.runs[0].proxy_cpu_s_per_arch > 0
    assert len(list(tmp_path.glob("proxy_scores_*.csv"))) == 1
    again = evaluate_accuracy_predictor("nb201", table, "gbm", **kwargs)
    assert again.runs[0].spearman_rho == report.runs[0].spearman_rho


def test_bad_input_names_the_value(table):
    with pytest.raises(InvalidInputError, match="train=20000"):
        evaluate_accuracy_predictor("nb201", table, "gbm", train=20000)
    with pytest.raises(InvalidInputError, match="train=2"):
        evaluate_accuracy_predictor("nb201", table, "gbm", train=2)
    with pytest.raises(UnknownNameError, match="gbmm"):
        evaluate_accuracy_predictor("nb201", table, "gbmm")
    with pytest.raises(UnknownNameError, match="mecoo"):
        evaluate_accuracy_predictor("nb201", table, "gbm", proxy_features="mecoo", data="digits")
    with pytest.raises(InvalidInputError, match="need a minibatch"):
        evaluate_accuracy_predictor("nb201", table, "gbm", proxy_features="meco")
    with pytest.raises(InvalidInputError, match="listed twice"):
        evaluate_accuracy_predictor("nb201", table, "gbm", proxy_features="meco,meco", data="digits")
    with pytest.raises(InvalidInputError, match="test_sample"):
        evaluate_accuracy_predictor("nb201", table, "gbm", train=50, test_sample=15600)
    with pytest.raises(InvalidInputError, match="its options: n_estimators"):
        evaluate_accuracy_predictor("nb201", table, "gbm", options={"trees": 5})


def test_cli_json_and_saved_predictor(tmp_path, capsys):
    saved = tmp_path / "gbm.json"
    argv = ["predictor", "accuracy", "--table", str(TABLE), "--train", "25", "--test-sample", "200"]
    assert main([*argv, "--set", "n_estimators=50", "--save", str(saved), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "gbm" and out["options"]["n_estimators"] == 50
    assert out["test"].startswith("a seeded sample of 200") and out["runs"][0]["num_test"] == 200
    assert out["saved"] == str(saved)
    loaded = AccuracyPredictor.load(saved)
    space = get_space("nb201")
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    pred = loaded.predict([space.from_string(arch)])
    assert pred.shape == (1,) and 10.0 <= pred[0] <= 100.0
    assert main([*argv, "--model", "mlp", "--repeats", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "test a seeded sample of 200" in text and "median" in text and "rho unseen" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train", "20000"], "train=20000"),
        (["--model", "gbn"], "unknown accuracy predictor 'gbn'"),
        (["--proxy-features", "naswoot", "--data", "digits"], "unknown proxy 'naswoot'"),
        (["--data", "digits"], "data is used only for proxy features"),
        (["--test-sample", "many"], "--test-sample 'many'"),
        (["--set", "n_estimators"], "KEY=VALUE"),
        (["--repeats", "0"], "repeats=0"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(extra, message, capsys):
    argv = ["predictor", "accuracy", "--table", str(TABLE), "--test-sample", "50", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_missing_table_exits_2(tmp_path, capsys):
    assert main(["predictor", "accuracy", "--table", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
