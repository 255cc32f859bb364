"""``auto``: NSGA-II first, then Pareto local search on everything it found; the default everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.cli import build_parser
from slimforge.errors import InvalidInputError
from slimforge.runs.config import SearchConfig
from slimforge.search import minimize
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
