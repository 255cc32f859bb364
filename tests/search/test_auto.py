"""``auto``: NSGA-II first, then Pareto local search on everything it found; the default everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.cli import build_parser
from slimforge.errors import InvalidInputError
from slimforge.runs.config import SearchConfig
from slimforge.search import minimize
from slimforge.search.algorithms._model_picks import ModelPicks, hv_gains
from slimforge.search.algorithms.auto import Auto
from slimforge.search.indicators import hv_contributions, hypervolume
from slimforge.search.pareto import constrained_rank, pareto_mask
from slimforge.spaces import get_space
from slimforge.testing.algorithms import toy_problem

NB201 = get_space("nb201")


def _run(algo, problem, rounds):
    proposed = []
    for _ in range(rounds):
        asked = algo.ask()
        proposed += asked
        algo.tell([problem.evaluate(NB201.canonical(g)) for g in asked])
    return proposed


def test_global_phase_is_nsga2_until_its_evaluations_are_spent_then_local_search_takes_over():
    problem = toy_problem(NB201)
    algo = Auto(NB201, seed=0, global_evaluations=100, pop_size=20)
    first = algo.ask()
    assert len(first) == 20 and algo.phase == "global"
    told = [problem.evaluate(g) for g in first]
    algo.tell(told)
    children = algo.ask()
    assert len(children) == 50  # the study's offspring scheme: 20 crossover + 25 mutation + 5 random
    algo.tell([problem.evaluate(NB201.canonical(g)) for g in children])
    assert algo.phase == "global" and len(algo.archive) == 70
    _run(algo, problem, 1)
    assert algo.phase == "local" and len(algo.archive) >= 100
    # The local phase starts from everything evaluated, focused on the first population's 60th
    # percentile (the default).
    local = algo._local
    assert {e.genome for e in local.archive} == set(algo.archive)
    F = np.array([e.vector for e in told])
    assert np.allclose(local._reference, np.percentile(F, 60, axis=0))
    # ... and never proposes a network the global phase evaluated.
    later = _run(algo, problem, 10)
    assert len(later) == 100 and not set(later) & set(algo.archive) and len(set(later)) == 100


def test_zero_global_evaluations_is_pareto_local_search_from_its_own_sample():
    algo = Auto(NB201, seed=0, global_evaluations=0, pop_size=30)
    assert algo.phase == "local" and len(algo.ask()) == 30


def test_settings_round_trip_and_bad_values_are_refused():
    algo = Auto(NB201, seed=0, global_evaluations=120, batch_size=8, focus_percentile=60.0)
    assert Auto(NB201, **algo.settings()).settings() == algo.settings()
    with pytest.raises(InvalidInputError, match="global_evaluations"):
        Auto(NB201, global_evaluations=-1)
    with pytest.raises(InvalidInputError, match="focus_percentile"):
        Auto(NB201, focus_percentile=120.0)


def test_auto_beats_random_search_at_equal_budget():
    problem = toy_problem(NB201)
    ref = np.array([60.0, 4.0])

    def hv(result):
        F = np.array([e.vector for e in result.evaluations])
        return hypervolume(F[pareto_mask(F)], ref)

    auto = [hv(minimize(problem, "auto", budget=300, seed=s)) for s in range(3)]
    rand = [hv(minimize(problem, "random", budget=300, seed=s)) for s in range(3)]
    assert min(auto) > max(rand)


def test_auto_is_the_default_of_search_and_run():
    args = build_parser().parse_args(["search", "--accuracy-table", "a.csv"])
    assert args.algorithm == "auto"
    assert SearchConfig().algorithm == "auto"


def _local_after(rounds, **settings):
    """Auto's local phase after ``rounds`` asks on the toy problem."""
    problem = toy_problem(NB201)
    algo = Auto(NB201, seed=0, pop_size=30, **settings)
    _run(algo, problem, rounds)
    return algo._local


def test_defaults_square_the_contributions_and_deepen_one_layer():
    algo = Auto(NB201, seed=0)
    assert algo.settings()["weight_power"] == 2.0 and algo.settings()["deepen"] == 1
    local = _local_after(4)
    F, violation = local._F, local._violation
    parents, weights = local._parents(F, violation, local._front(F, violation))
    # The focus front's members, weighted by their squared contributions within the box.
    lower, upper = F.min(axis=0), F.max(axis=0)
    span = np.where(upper > lower, upper - lower, 1.0)
    inside = [i for i in parents if np.all(F[i] < local._reference)]
    assert inside == parents
    contrib = hv_contributions((F[parents] - lower) / span, (local._reference - lower) / span)
    assert np.allclose(weights, contrib**2 / np.sum(contrib**2))


def test_deepen_expands_the_focus_box_second_layer_once_its_front_is_spent_then_falls_back():
    local = _local_after(4)
    F, violation = local._F, local._violation
    box = np.flatnonzero(np.all(F < local._reference, axis=1))
    rank = constrained_rank(F[box], violation[box])
    first, second = box[rank == 0], box[rank == 1]
    assert len(first) and len(second)
    for i in first:  # the focus front's neighbourhoods are spent (a local optimum of the box)
        local._unexplored[local.archive[i].genome] = []
    parents, weights = local._parents(F, violation, local._front(F, violation))
    assert sorted(parents) == sorted(int(i) for i in second if local._neighbours(local.archive[i].genome))
    assert np.isclose(weights.sum(), 1.0)
    # With the second layer spent too, it falls back to the front outside the box.
    for i in second:
        local._unexplored[local.archive[i].genome] = []
    outside, _ = local._parents(F, violation, local._front(F, violation))
    assert outside and not set(outside) & {int(i) for i in box}
    # Without deepen the search leaves the box as soon as the focus front is spent.
    plain = _local_after(4, deepen=0)
    F, violation = plain._F, plain._violation
    box = np.flatnonzero(np.all(F < plain._reference, axis=1))
    rank = constrained_rank(F[box], violation[box])
    for i in box[rank == 0]:
        plain._unexplored[plain.archive[i].genome] = []
    parents, _ = plain._parents(F, violation, plain._front(F, violation))
    assert parents and not set(parents) & {int(i) for i in box}


def test_weight_power_and_deepen_are_checked():
    with pytest.raises(InvalidInputError, match="deepen"):
        Auto(NB201, deepen=-1)
    with pytest.raises(InvalidInputError, match="deepen"):
        Auto(NB201, deepen=True)
    with pytest.raises(InvalidInputError, match="weight_power"):
        Auto(NB201, weight_power=5.0)
    algo = Auto(NB201, seed=0, weight_power=1.0, deepen=0)
    assert Auto(NB201, **algo.settings()).settings() == algo.settings()


def test_model_share_gives_each_local_batch_model_picks_on_a_listable_space_only():
    # off by default, and then absent from the settings (stores and run fingerprints from before it stay valid)
    assert "model_share" not in Auto(NB201, seed=0).settings() and Auto(NB201, seed=0)._local._model is None
    algo = Auto(NB201, seed=0, pop_size=30, model_share=0.4, batch_size=5)
    assert algo._local._model.active and len(algo._local._model.genomes) == 8765  # NB-201's distinct networks
    assert Auto(NB201, **algo.settings()).settings() == algo.settings()
    problem = toy_problem(NB201)
    _run(algo, problem, 3)
    local = algo._local
    expected = local._model.picks(  # what the model proposes now (its hyper-parameter cadence is per fit)
        2,
        [e.genome for e in local.archive],
        local._F,
        local._violation,
        local._reference,
        set(local._proposed),
    )
    local._model._fits -= 1
    batch = algo.ask()
    assert len(batch) == 5 and batch[:2] == expected and len(set(batch)) == 5
    assert not Auto(
        get_space("mbv2"), seed=0, model_share=0.3
    )._local._model.active  # 7^11 genomes: plain PLS
    for bad in (-0.1, 1.5, True, "0.3"):
        with pytest.raises(InvalidInputError, match="model_share"):
            Auto(NB201, model_share=bad)


def test_hv_gains_are_the_hypervolume_each_point_adds():
    rng = np.random.default_rng(0)
    ref = np.array([0.8, 0.9])
    front = rng.random((6, 2))
    front = front[pareto_mask(front)]
    points = rng.random((40, 2))
    inside = front[np.all(front < ref, axis=1)]
    base = hypervolume(inside, ref) if len(inside) else 0.0
    for p, gain in zip(points, hv_gains(points, front, ref)):
        together = np.vstack([inside, p[None, :]]) if np.all(p < ref) else inside
        assert gain == pytest.approx(hypervolume(together, ref) - base if len(together) else 0.0, abs=1e-12)


def test_model_picks_the_network_that_adds_most_when_the_objectives_are_multiplicative():
    # Objectives = exp(additive in the operations): exactly what the GP's linear part fits on log targets.
    rng = np.random.default_rng(1)
    weights = rng.normal(scale=0.3, size=(2, 6, 5))

    def objectives(genome):
        return np.exp([sum(weights[k, i, g] for i, g in enumerate(genome)) for k in range(2)])

    model = ModelPicks(NB201)
    seen = [model.genomes[i] for i in rng.choice(len(model.genomes), size=60, replace=False)]
    F = np.array([objectives(g) for g in seen])
    reference = np.percentile(F, 60, axis=0)
    picked = model.picks(2, seen, F, np.zeros(len(seen)), reference, proposed=set(seen))
    assert len(picked) == 2 and not set(picked) & set(seen)
    # The first pick's true gain is (near) the best any unseen network offers.
    lower, upper = F.min(axis=0), F.max(axis=0)
    span = upper - lower
    norm = (F - lower) / span
    rest = [g for g in model.genomes if g not in set(seen)]
    true = (np.array([objectives(g) for g in rest]) - lower) / span
    gains = hv_gains(true, norm[pareto_mask(norm)], (reference - lower) / span)
    first = hv_gains(
        ((objectives(picked[0]) - lower) / span)[None, :], norm[pareto_mask(norm)], (reference - lower) / span
    )
    assert first[0] >= 0.9 * gains.max() > 0
    # Too few evaluations, more than two objectives or no reference: no picks.
    assert model.picks(2, seen[:5], F[:5], np.zeros(5), reference, set(seen)) == []
    assert model.picks(2, seen, np.hstack([F, F[:, :1]]), np.zeros(len(seen)), reference, set(seen)) == []
    assert model.picks(2, seen, F, np.zeros(len(seen)), None, set(seen)) == []
