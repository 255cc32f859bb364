"""Tests of slimforge.hardware.predictors: features, models, JSON round-trip, evaluation, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.hardware.predictors import (
    PREDICTORS,
    LatencyPredictor,
    NB201Features,
    PredictorEvaluation,
    RidgePredictor,
    TransferPredictor,
    create_predictor,
    evaluate_on_table,
    isomorphism_key,
    load_predictor,
    onehot,
    sample_rows,
    score_predictions,
)
from slimforge.hardware.predictors._boosting import fit_boosting, predict_trees
from slimforge.hardware.tables import read_device_table
from slimforge.spaces import get_space

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nb201"
ORT = DATA / "device_pi5_onnxruntime.csv"
LITERT = DATA / "device_pi5_litert.csv"
needs_data = pytest.mark.skipif(
    not (ORT.exists() and LITERT.exists()), reason=f"reference data not found at {DATA}"
)

# Made-up per-operation costs (ms) for synthetic devices: none, skip, conv1x1, conv3x3, pool.
_OP_COST = np.array([0.05, 0.0, 0.35, 3.2, 0.3])
DIRECT = [name for name in PREDICTORS.list() if name != "transfer"]


def _genomes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5, size=(n, 6))


def _latency(genomes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A synthetic device: a constant plus one cost per edge."""
    return scale * (0.8 + _OP_COST[genomes].sum(axis=1))


def _col(features: NB201Features, matrix: np.ndarray, prefix: str) -> np.ndarray:
    cols = [i for i, name in enumerate(features.names) if name.startswith(prefix)]
    return matrix[:, cols]


# ----------------------------------------------------------------------------------- features
def test_onehot_marks_one_operation_per_gene():
    out = onehot([(0, 1, 2, 3, 4, 0), (4, 4, 4, 4, 4, 4)])
    assert out.shape == (2, 30)
    assert out.sum(axis=1).tolist() == [6.0, 6.0]
    assert out[0].reshape(6, 5).argmax(axis=1).tolist() == [0, 1, 2, 3, 4, 0]


def test_cut_off_cell_has_its_canonical_forms_canonical_features():
    space = get_space("nb201")
    features = NB201Features()
    # none on 0->1 cuts node 1 off the input: pool 1->2 and conv3x3 1->3 compute on zeros.
    cut = (0, 3, 4, 1, 3, 2)
    canonical = space.canonical(cut)
    assert canonical != cut
    x = features.transform([cut, canonical])
    assert _col(features, x, "canon_").tolist()[0] == _col(features, x, "canon_").tolist()[1]
    assert x[0, features.names.index("path_ops")] == x[1, features.names.index("path_ops")]
    # What a runtime without dead-code elimination executes still differs: one conv3x3 and one pool more.
    graph = dict(zip(features.names, x[0] - x[1]))
    assert graph["graph_conv3x3"] == 1 and graph["graph_pool"] == 1 and graph["graph_conv1x1"] == 0


def test_swapped_twin_cells_get_identical_features():
    # With edge 1->2 none, nodes 1 and 2 are interchangeable: the same network.
    a, b = (2, 3, 0, 4, 1, 3), (3, 2, 0, 4, 3, 1)
    assert get_space("nb201").canonical(a) == get_space("nb201").canonical(b)
    x = NB201Features().transform([a, b])
    assert x[0].tolist() == x[1].tolist()


def test_pools_on_the_same_tensor_count_once():
    features = NB201Features()
    # pool(x) on 0->1 and on 0->3; node 2 = skip(x), so pool on 2->3 pools x a third time.
    x = features.transform([(4, 1, 0, 4, 0, 4)])
    assert x[0, features.names.index("graph_pool")] == 1


@pytest.mark.slow
def test_analytic_macs_match_torch_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    genome = (3, 2, 4, 1, 3, 2)  # every kind of operation, no dead edge
    model = get_space("nb201").build(genome, num_classes=100).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert NB201Features(num_classes=100).cell_macs([genome])[0] == counter.get_total_flops() / 2


def test_isomorphism_key_follows_skip_and_zero():
    # skip(conv3x3(x)) on 0->1->2 is conv3x3(x) on 0->2.
    assert isomorphism_key((3, 0, 1, 1, 4, 3)) == isomorphism_key((3, 3, 0, 1, 4, 3))
    assert isomorphism_key((3, 0, 1, 1, 4, 3)) != isomorphism_key((2, 0, 1, 1, 4, 3))
    # A cell whose output never sees the input: every op on a zero node is zero.
    assert isomorphism_key((0, 0, 3, 0, 3, 0)) == isomorphism_key((0, 0, 0, 0, 0, 0))


def test_featuriser_rejects_bad_settings():
    with pytest.raises(InvalidInputError, match="input_size"):
        NB201Features(input_size=30)
    with pytest.raises(InvalidInputError, match="channels"):
        NB201Features(channels=0)


# ------------------------------------------------------------------------------------- models
def test_exported_trees_predict_like_scikit_learn():
    from sklearn.ensemble import GradientBoostingRegressor

    g = _genomes(60, seed=3)
    x, y = onehot(g), _latency(g)
    state = fit_boosting(x, y, seed=0, n_estimators=40, max_depth=3)
    reference = GradientBoostingRegressor(random_state=0, n_estimators=40, max_depth=3).fit(x, y)
    probe = onehot(_genomes(200, seed=4))
    np.testing.assert_allclose(predict_trees(state, probe), reference.predict(probe), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", DIRECT)
def test_save_load_round_trip_is_exact(tmp_path, name):
    g = _genomes(40, seed=1)
    # Keep the cross-validated grid of gbm small in a unit test.
    kwargs = {"grid": [{"n_estimators": 20, "max_depth": 2, "learning_rate": 0.1}]} if name == "gbm" else {}
    predictor = create_predictor(name, seed=0, **kwargs)
    predictor.fit(g, _latency(g))
    path = tmp_path / f"{name}.json"
    predictor.save(path)
    data = json.loads(path.read_text())
    assert data["model"] == name and data["format"] == "slimforge.latency_predictor"
    loaded = load_predictor(path)
    assert type(loaded) is type(predictor)
    probe = _genomes(300, seed=2)
    assert loaded.predict(probe).tolist() == predictor.predict(probe).tolist()


def test_transfer_round_trip_and_source_inside(tmp_path):
    g = _genomes(200, seed=5)
    source = RidgePredictor(seed=0).fit(g, _latency(g))
    target = _genomes(20, seed=6)
    transfer = TransferPredictor(source, seed=0).fit(target, _latency(target, scale=0.6))
    transfer.save(tmp_path / "t.json")
    loaded = load_predictor(tmp_path / "t.json")
    probe = _genomes(100, seed=7)
    assert loaded.predict(probe).tolist() == transfer.predict(probe).tolist()
    # A scaled copy of the source device is learnt almost exactly from 20 samples.
    np.testing.assert_allclose(transfer.predict(probe), _latency(probe, scale=0.6), rtol=0.02)


def test_ridge_recovers_an_additive_device():
    g = _genomes(80, seed=8)
    predictor = RidgePredictor(seed=0).fit(g, _latency(g))
    probe = _genomes(500, seed=9)
    rel = np.abs(predictor.predict(probe) - _latency(probe)) / _latency(probe)
    assert np.median(rel) < 0.02


def test_fit_is_deterministic_given_the_seed():
    g = _genomes(50, seed=10)
    y = _latency(g) * np.random.default_rng(0).uniform(0.9, 1.1, size=len(g))
    probe = _genomes(50, seed=11)
    for name in ("ridge", "onehot_gbm"):
        a = create_predictor(name, seed=4).fit(g, y).predict(probe)
        b = create_predictor(name, seed=4).fit(g, y).predict(probe)
        assert a.tolist() == b.tolist()


def test_bad_inputs_raise_for_people(tmp_path):
    predictor = RidgePredictor()
    with pytest.raises(InvalidInputError, match="not fitted"):
        predictor.predict([(0, 0, 0, 0, 0, 0)])
    with pytest.raises(InvalidInputError, match="one latency per genome"):
        predictor.fit(_genomes(5, 0), [1.0, 2.0])
    with pytest.raises(InvalidInputError, match=r"\[0, 4\]"):
        predictor.fit([(0, 1, 2, 3, 4, 5)] * 4, [1.0] * 4)
    with pytest.raises(InvalidInputError, match="positive finite"):
        predictor.fit(_genomes(5, 0), [1.0, 2.0, -1.0, 1.0, 1.0])
    with pytest.raises(InvalidInputError, match="at least 3"):
        predictor.fit(_genomes(2, 0), [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="fitted source"):
        TransferPredictor(RidgePredictor())
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ModelFileError, match="not a slimforge latency predictor"):
        LatencyPredictor.load(bad)
    with pytest.raises(ModelFileError, match="no such file"):
        load_predictor(tmp_path / "absent.json")


# ---------------------------------------------------------------------------------- evaluation
def test_scores_on_a_hand_checked_example():
    y = np.array([1.0, 2.0, 3.0, 4.0, 0.1])
    p = np.array([1.05, 2.5, 3.0, 3.9, 0.5])
    s = score_predictions(p, y, model="m", n_train=7, table_median_ms=2.0)
    assert s.n_test == 5 and s.n_train == 7
    assert s.spearman_rho == pytest.approx(1.0)
    assert s.within_10pct_share == pytest.approx(3 / 5)
    assert s.mape_pct == pytest.approx(100 * (0.05 + 0.25 + 0 + 0.025 + 4.0) / 5)
    # The filter keeps rows >= 20% of the median (0.4 ms): the 0.1 ms row goes.
    assert s.min_latency_ms_filtered == pytest.approx(0.4)
    assert s.n_test_filtered == 4
    assert s.within_10pct_share_filtered == pytest.approx(3 / 4)
    assert s.mape_pct_filtered == pytest.approx(100 * (0.05 + 0.25 + 0 + 0.025) / 4)
    assert type(s).from_json(s.to_json()) == s


def test_sample_rows_is_seeded_and_checked():
    a, b = sample_rows(1000, 20, seed=3), sample_rows(1000, 20, seed=3)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 20
    assert sample_rows(1000, 20, seed=4).tolist() != a.tolist()
    with pytest.raises(InvalidInputError, match="train size"):
        sample_rows(10, 9, seed=0)


@pytest.fixture(scope="module")
def tables():
    return read_device_table(ORT), read_device_table(LITERT)


@needs_data
@pytest.mark.slow
def test_few_shot_fit_on_the_real_table_ranks_well(tables):
    ort, _ = tables
    evaluation, _ = evaluate_on_table(ort, model="ridge", train_size=60, seed=7, baselines=True)
    assert evaluation.model.n_train == 60 and evaluation.model.n_test == len(ort) - 60
    assert evaluation.model.spearman_rho > 0.95
    assert evaluation.model.within_10pct_share_filtered > 0.8
    baseline = {b.model: b for b in evaluation.baselines}
    assert evaluation.model.spearman_rho > baseline["onehot_gbm"].spearman_rho
    assert evaluation.model.spearman_rho > baseline["macs_linear"].spearman_rho


@needs_data
@pytest.mark.slow
def test_transfer_from_the_other_runtime(tables):
    ort, litert = tables
    evaluation, predictor = evaluate_on_table(litert, train_size=20, seed=7, source_table=ort)
    assert predictor.name == "transfer"
    assert evaluation.source_target_spearman_rho == pytest.approx(0.84, abs=0.02)
    assert evaluation.model.spearman_rho > 0.9
    assert evaluation.model.spearman_rho > evaluation.source_target_spearman_rho


# ----------------------------------------------------------------------------------------- CLI
def _synthetic_table(tmp_path: Path, n: int = 300) -> Path:
    space = get_space("nb201")
    genomes = np.unique(_genomes(n, seed=12), axis=0)
    lines = ["index,arch,latency_ms,energy_mj"]
    for i, (g, y) in enumerate(zip(genomes.tolist(), _latency(genomes).tolist())):
        lines.append(f"{i},{space.to_string(g)},{y:.5f},{2 * y:.5f}")
    path = tmp_path / "device.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_fit_prints_json_and_saves(tmp_path, capsys):
    table = _synthetic_table(tmp_path)
    saved = tmp_path / "pred.json"
    argv = ["predictor", "fit", "--device-table", str(table), "--train", "40", "--seed", "1"]
    assert main([*argv, "--save", str(saved), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["model"] == "ridge" and out["model"]["n_train"] == 40
    assert out["network"] == "own"  # measured network by network, not once per class
    assert [b["model"] for b in out["baselines"]] == ["macs_linear", "onehot_gbm"]
    assert out["model"]["spearman_rho"] > 0.95  # an additive device is easy
    assert out.pop("saved") == str(saved)
    assert PredictorEvaluation.from_dict(out).to_dict() == out
    assert load_predictor(saved).name == "ridge"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("index,arch\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    assert main(["predictor", "fit", "--device-table", str(bad), "--json"]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) latency_ms" in err and "bad.csv" in err and err.count("\n") == 1
    table = _synthetic_table(tmp_path)
    assert main(["predictor", "fit", "--device-table", str(table), "--model", "rige"]) == 2
    assert "did you mean ridge" in capsys.readouterr().err
    assert main(["predictor", "fit", "--device-table", str(table), "--model", "transfer"]) == 2
    assert "needs a source device table" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("index,arch,latency_ms\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    assert main(["predictor", "fit", "--device-table", str(table), "--source-table", str(other)]) == 2
    assert "every target architecture" in capsys.readouterr().err
