"""``auto``: NSGA-II first, then Pareto local search on everything it found; the default everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.cli import build_parser
from slimforge.errors import InvalidInputError
from slimforge.runs.config import SearchConfig
from slimforge.search import minimize
from slimforge.search.algorithms.auto import Auto
from slimforge.search.indicators import hypervolume
from slimforge.search.pareto import pareto_mask
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
