"""Learned accuracy predictors: fit quality, exact JSON round trip, uncertainty, search plug-ins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.estimators import (
    PREDICTORS,
    AccuracyPredictor,
    PredictorObjective,
    encode_genomes,
    evaluate_top_k,
    get_predictor,
    proxy_features,
)
from slimforge.spaces import get_space

TABLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nb201" / "accuracy_cifar10.csv"
SPACE = get_space("nb201")


def synthetic_accuracy(genomes) -> np.ndarray:
    """A made-up but structured ground truth: 3x3 convs help most, pooling hurts, dead cells fail."""
    out = []
    for g in genomes:
        c = np.bincount(SPACE.canonical(g), minlength=5)
        out.append(10.0 if c[0] == 6 else 80.0 + 2.5 * c[3] + 1.2 * c[2] - 1.5 * c[4] + 0.3 * c[1])
    return np.array(out)


def draw(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def test_encoding_is_canonical_one_hot_plus_counts():
    g, cut = (3, 0, 0, 2, 1, 0), (3, 0, 0, 2, 0, 0)  # without the skip 1->3 the conv 0->1 is dead
    assert SPACE.canonical(g) != g
    x = encode_genomes(SPACE, [g, SPACE.canonical(g), cut])
    assert x.shape == (3, 30 + 5)
    np.testing.assert_array_equal(x[0], x[1])
    assert not np.array_equal(x[0], x[2])
    np.testing.assert_array_equal(x[0, 30:], [3, 1, 1, 1, 0])  # none, skip, conv 1x1, conv 3x3, pool
    np.testing.assert_array_equal(x[2, 30:], [5, 0, 1, 0, 0])
    np.testing.assert_array_equal(x[0, :30].reshape(6, 5).sum(1), np.ones(6))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n == "gp" else []) for n in PREDICTORS.list()]
)
def test_predictor_learns_and_round_trips_exactly(name, tmp_path):
    train, test = draw(60, 1), draw(200, 2)
    model = get_predictor(name, seed=0).fit(train, synthetic_accuracy(train))
    pred = model.predict(test)
    assert pred.shape == (200,) and np.isfinite(pred).all()
    assert spearmanr(pred, synthetic_accuracy(test))[0] > 0.8
    path = tmp_path / f"{name}.json"
    model.save(path)
    text = path.read_text()
    assert json.loads(text)["format"] == "slimforge.accuracy_predictor"
    loaded = AccuracyPredictor.load(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(test), pred)
    again = get_predictor(name, seed=0).fit(train, synthetic_accuracy(train))
    np.testing.assert_array_equal(again.predict(test), pred)  # seeded: the same fit twice


def test_gbm_arrays_reproduce_scikit_learn():
    from sklearn.ensemble import GradientBoostingRegressor

    from slimforge.estimators.predictors._base import from_target, to_target

    train, test = draw(50, 3), draw(50, 4)
    model = get_predictor("gbm", seed=5).fit(train, synthetic_accuracy(train))
    seed = int(np.random.default_rng(5).integers(2**31 - 1))
    ref = GradientBoostingRegressor(
        n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
    )
    ref.fit(encode_genomes(SPACE, train), to_target(synthetic_accuracy(train)))
    np.testing.assert_allclose(
        model.predict(test), from_target(ref.predict(encode_genomes(SPACE, test))), rtol=1e-12
    )


def test_gp_uncertainty_grows_away_from_the_data():
    train = draw(40, 5)
    gp = get_predictor("gp", seed=0).fit(train, synthetic_accuracy(train))
    _, std_train = gp.predict_with_std(train)
    far = [g for g in draw(400, 6) if SPACE.canonical(g) not in {SPACE.canonical(t) for t in train}]
    mean_far, std_far = gp.predict_with_std(far)
    assert (std_train >= 0).all() and np.median(std_far) > np.median(std_train)
    np.testing.assert_array_equal(mean_far, gp.predict(far))
    assert not hasattr(get_predictor("gbm"), "predict_with_std")


def test_proxy_features_are_required_and_nonfinite_values_filled(tmp_path):
    train, test = draw(40, 7), draw(10, 8)
    acc = synthetic_accuracy(train)
    scores = {"meco": acc * 3.0 + 1.0, "synflow": np.exp(acc / 4.0)}
    extra = proxy_features(scores, ["meco", "synflow"])
    model = get_predictor("gbm", extra_features=("meco", "synflow"), seed=0).fit(train, acc, extra=extra)
    with pytest.raises(InvalidInputError, match="extra features"):
        model.predict(test)
    test_extra = proxy_features(
        {"meco": np.full(10, -np.inf), "synflow": np.full(10, np.nan)}, ["meco", "synflow"]
    )
    worst = model.predict(test, extra=test_extra)
    assert np.isfinite(worst).all()
    model.save(tmp_path / "p.json")
    np.testing.assert_array_equal(
        AccuracyPredictor.load(tmp_path / "p.json").predict(test, extra=test_extra), worst
    )
    with pytest.raises(InvalidInputError, match="expected"):
        model.predict(test, extra=test_extra[:, :1])


def test_one_hot_needs_no_shared_choices():
    assert encode_genomes(SPACE, [(0, 1, 2, 3, 4, 0)], canonical=False)[0, :30].reshape(6, 5).argmax(
        1
    ).tolist() == [0, 1, 2, 3, 4, 0]


def test_bad_input_and_bad_files(tmp_path):
    with pytest.raises(InvalidInputError, match="at least"):
        get_predictor("gp").fit(draw(2, 0), [90.0, 91.0])
    with pytest.raises(InvalidInputError, match="one per genome"):
        get_predictor("gp").fit(draw(6, 0), [90.0] * 5)
    with pytest.raises(InvalidInputError, match="percentages"):
        get_predictor("gbm").fit(draw(6, 0), [0.9] * 5 + [120.0])
    with pytest.raises(InvalidInputError, match="not fitted"):
        get_predictor("mlp").predict(draw(2, 0))
    (tmp_path / "x.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelFileError, match="not a slimforge accuracy predictor"):
        AccuracyPredictor.load(tmp_path / "x.json")
    with pytest.raises(ModelFileError, match="no such file"):
        AccuracyPredictor.load(tmp_path / "missing.json")


@pytest.mark.slow
def test_predictor_objective_plugs_into_a_problem():
    from slimforge.search import Problem

    train = draw(40, 9)
    gp = get_predictor("gp", seed=0).fit(train, synthetic_accuracy(train))
    objective = PredictorObjective(SPACE, gp)
    problem = Problem(SPACE, ["predicted_error"], [objective])
    genome = (3, 3, 3, 3, 3, 3)
    ev = problem.evaluate(genome)
    assert ev.objectives["predicted_error"] == pytest.approx(100.0 - gp.predict([genome])[0])
    assert ev.metrics["predicted_error_std"] >= 0.0
    with pytest.raises(InvalidInputError, match="extra features"):
        PredictorObjective(
            SPACE,
            get_predictor("gbm", extra_features=("meco",)).fit(
                train, synthetic_accuracy(train), extra=np.arange(40.0)[:, None]
            ),
        )


def test_predictor_assisted_evaluation_spends_k_expensive_calls():
    train, candidates = draw(60, 10), list(dict.fromkeys(draw(100, 11)))
    model = get_predictor("gbm", seed=0).fit(train, synthetic_accuracy(train))
    calls = []

    def expensive(g):
        calls.append(g)
        return float(synthetic_accuracy([g])[0])

    result = evaluate_top_k(candidates, model, expensive, k=5)
    assert len(calls) == 5 == sum(result.evaluated)
    top = np.argsort(-model.predict(candidates), kind="stable")[:5]
    assert sorted(np.flatnonzero(result.evaluated)) == sorted(top)
    assert max(synthetic_accuracy(calls)) >= np.percentile(synthetic_accuracy(candidates), 90)
    assert result.best() in calls
    calls.clear()
    evaluate_top_k(candidates + candidates, model, expensive, k=5)  # duplicates are evaluated once
    assert len(calls) == len(set(calls)) == 5
    with pytest.raises(InvalidInputError, match="k must be"):
        evaluate_top_k(candidates, model, expensive, k=0)


@pytest.mark.slow
@pytest.mark.skipif(not TABLE.exists(), reason="../shared/data/nb201/accuracy_cifar10.csv is absent")
def test_gbm_on_nas_bench_201_ranks_unseen_architectures():
    from slimforge.estimators import read_accuracy_table

    table = read_accuracy_table(TABLE, SPACE)
    train = table.sample(200, 123)
    rest = np.setdiff1d(np.arange(len(table)), train)[::10]
    acc = np.array(table.accuracy)
    model = get_predictor("gbm", seed=0).fit([table.genomes[i] for i in train], acc[train])
    assert spearmanr(model.predict([table.genomes[i] for i in rest]), acc[rest])[0] > 0.85
