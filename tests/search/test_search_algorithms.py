"""Search algorithms: the ask/tell contract and determinism for every registered one, then specifics."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from slimforge.errors import InvalidInputError
from slimforge.search import ALGORITHMS, Problem, make_algorithm, minimize
from slimforge.search.algorithms.cea import CEA
from slimforge.search.algorithms.nsga2 import NSGA2
from slimforge.search.algorithms.pareto_local_search import ParetoLocalSearch
from slimforge.search.algorithms.regularized_evolution import RegularizedEvolution
from slimforge.search.algorithms.wsea import WSEA
from slimforge.search.evaluator import Evaluator
from slimforge.search.indicators import hypervolume
from slimforge.search.pareto import pareto_mask
from slimforge.spaces import get_space

SPACE = get_space("nb201")
# Per-op latency and error gain: convolutions are slow and accurate, skip and pool cheap.
_COST = np.array([0.0, 0.05, 0.8, 2.0, 0.3])
_GAIN = np.array([0.0, 1.0, 3.0, 5.0, 1.5])


class ToyEvaluator(Evaluator):
    """A deterministic trade-off with noise: error falls and latency rises with convolutions."""

    def __init__(self, space):
        super().__init__(space, ("error", "latency_ms", "energy_mj"))
        self._noise = np.random.default_rng(0).random((15625, 2))

    def _evaluate(self, genome):
        g = np.array(genome)
        code = int(np.dot(g, 5 ** np.arange(6)))
        latency = 0.5 + _COST[g].sum() + 0.5 * self._noise[code, 0]
        error = 45.0 - _GAIN[g].sum() + 3.0 * self._noise[code, 1]
        return {"error": error, "latency_ms": latency, "energy_mj": 1.5 * latency + 0.1 * error}


@pytest.fixture(scope="module")
def problem() -> Problem:
    return Problem(SPACE, ["error", "latency_ms"], [ToyEvaluator(SPACE)])


#: algorithms whose runs here take seconds (BO fits a Gaussian process per batch): marked slow.
_SLOW = {"bo"}
_ALGORITHMS = [pytest.param(n, marks=[pytest.mark.slow] if n in _SLOW else []) for n in ALGORITHMS.list()]


def _front_key(result):
    return [(e.genome, e.vector) for e in result.front]


def _hv(result, problem):
    F = np.array([e.vector for e in result.evaluations])
    return hypervolume(F[pareto_mask(F)], np.array([45.0, 12.0]))


#: BO fits a Gaussian process per batch: 40 evaluations (its 20 random, then 4 fitted batches of 5)
#: check its determinism; the others run 150.
_SAME_SEED_BUDGET = {"bo": 40}


@pytest.mark.parametrize("name", _ALGORITHMS)
def test_same_seed_gives_the_same_front(problem, name):
    budget = _SAME_SEED_BUDGET.get(name, 150)
    a = minimize(problem, name, budget=budget, seed=7)
    b = minimize(problem, name, budget=budget, seed=7)
    assert a.front and _front_key(a) == _front_key(b)
    assert [e.genome for e in a.evaluations] == [e.genome for e in b.evaluations]
    c = minimize(problem, name, budget=budget, seed=8)
    assert [e.genome for e in c.evaluations] != [e.genome for e in a.evaluations]


@pytest.mark.parametrize("name", _ALGORITHMS)
def test_ask_tell_contract(problem, name):
    algo = make_algorithm(name, SPACE, seed=0)
    with pytest.raises(InvalidInputError, match="ask"):
        algo.tell([])
    asked = algo.ask()
    assert asked and all(SPACE.validate(g) == g for g in asked)
    with pytest.raises(InvalidInputError, match="twice"):
        algo.ask()
    algo.tell([problem.evaluate(SPACE.canonical(g)) for g in asked])
    assert algo.ask()


def test_unknown_settings_are_refused_with_the_known_ones():
    with pytest.raises(InvalidInputError, match="pop_size"):
        make_algorithm("nsga2", SPACE, popsize=20)
    with pytest.raises(InvalidInputError, match="num_calibration"):
        make_algorithm("wsea", SPACE, calibration=5)
    with pytest.raises(InvalidInputError, match="seed"):
        make_algorithm("random", SPACE, seed=-1)


def test_nsga2_follows_the_study_scheme(problem):
    algo = NSGA2(SPACE, seed=0)
    initial = algo.ask()
    assert len(initial) == 50 and len(set(initial)) == 50
    algo.tell([problem.evaluate(g) for g in initial])
    children = algo.ask()
    assert len(children) == 20 + 25 + 5
    # Children are new to the population (redrawn when they repeat a member).
    assert not set(children) & {e.genome for e in algo.population}
    told = [problem.evaluate(g) for g in children]
    merged = algo.population + told
    algo.tell(told)
    assert len(algo.population) == 50
    # Elitism: every non-dominated member of parents + children survives.
    F = np.array([e.vector for e in merged])
    best = {merged[i].genome for i in np.flatnonzero(pareto_mask(F))}
    assert best <= {e.genome for e in algo.population}


def test_nsga2_stops_after_its_iterations(problem):
    result = minimize(problem, functools.partial(NSGA2, iterations=2), budget=1000, seed=0)
    assert result.stop_reason == "algorithm finished"
    assert result.num_evaluations <= 50 * 3


def test_wsea_calibrates_on_random_samples_and_ranks_by_mean_z_score(problem):
    algo = WSEA(SPACE, seed=0, num_calibration=200)
    sample = algo.ask()
    assert len(set(sample)) == 200
    told = [problem.evaluate(g) for g in sample]
    algo.tell(told)
    F = np.array([e.vector for e in told])
    assert np.allclose(algo.mean, F.mean(axis=0)) and np.allclose(algo.std, F.std(axis=0))
    z = ((F - F.mean(axis=0)) / F.std(axis=0)).mean(axis=1)
    assert algo.population[0].genome == told[int(np.argmin(z))].genome


def test_cea_bounds_the_secondary_objectives_at_the_60th_percentile(problem):
    algo = CEA(SPACE, seed=0, num_calibration=200)
    sample = algo.ask()
    told = [problem.evaluate(g) for g in sample]
    algo.tell(told)
    latency = np.array([e.objectives["latency_ms"] for e in told])
    assert algo.epsilon[0] == pytest.approx(np.percentile(latency, 60))
    within = [e for e in told if e.objectives["latency_ms"] <= algo.epsilon[0]]
    assert algo.population[0].genome == min(within, key=lambda e: e.objectives["error"]).genome


def test_calibrated_baselines_spend_budget_on_calibration(problem):
    result = minimize(problem, "wsea", budget=300, seed=0)
    assert result.num_evaluations == 300  # all of it random calibration: counted honestly


def test_regularized_evolution_ages_its_population_and_mutates_one_gene(problem):
    algo = RegularizedEvolution(SPACE, seed=0, population_size=20, sample_size=5, batch_size=4)
    algo.tell([problem.evaluate(g) for g in algo.ask()])
    for _ in range(10):
        children = algo.ask()
        assert len(children) == 4
        algo.tell([problem.evaluate(g) for g in children])
        assert len(algo.population) == 20
    assert [e.genome for e in list(algo.population)[-4:]] == children


def test_pareto_local_search_never_proposes_a_network_twice(problem):
    algo = ParetoLocalSearch(SPACE, seed=0)
    proposed = []
    for _ in range(40):
        asked = algo.ask()
        proposed += asked
        algo.tell([problem.evaluate(g) for g in asked])
    assert len(proposed) == len(set(proposed)) == 20 + 39 * 10
    assert all(SPACE.canonical(g) == g for g in proposed)


def test_pareto_local_search_focus_point_is_the_initial_median(problem):
    algo = ParetoLocalSearch(SPACE, seed=0, n_init=30)
    told = [problem.evaluate(g) for g in algo.ask()]
    algo.tell(told)
    F = np.array([e.vector for e in told])
    assert np.allclose(algo._reference, np.median(F, axis=0))


@pytest.mark.parametrize("name", ["nsga2", "pls", "regularized_evolution"])
def test_guided_search_beats_random_search_at_equal_budget(problem, name):
    guided = minimize(
        problem, name, budget=300, seed=0, settings={"iterations": None} if name == "nsga2" else None
    )
    random = minimize(problem, "random", budget=300, seed=0)
    assert _hv(guided, problem) > _hv(random, problem)
