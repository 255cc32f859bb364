"""The minimize loop: distinct-evaluation budget, run store, resume, executors, infeasibility."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from slimforge.errors import InvalidInputError
from slimforge.io import RunStore
from slimforge.search import Problem, SearchResult, build_problem, minimize
from slimforge.search.algorithms._base import Algorithm
from slimforge.search.evaluator import Evaluator
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")


class CountingEvaluator(Evaluator):
    """error/latency from the genome's op sum, counting its calls."""

    def __init__(self, space):
        super().__init__(space, ("error", "latency_ms"))
        self.calls = 0
        self.fail_at = None

    def _evaluate(self, genome):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("evaluation crashed")
        s = sum(genome) + 0.37 * genome[0] + 0.11 * genome[5]
        return {"error": 40.0 - s, "latency_ms": 0.5 + 0.25 * s + 0.01 * genome[2]}


class Repeater(Algorithm):
    """Asks the same (non-canonical) genomes again and again, plus new random ones."""

    name = "repeater"

    def __init__(self, space, *, seed=0, fresh=3):
        super().__init__(space, seed=seed)
        self.fresh = fresh
        self.told = []

    def _ask(self):
        dup = [(0, 3, 3, 1, 2, 2), (0, 3, 0, 1, 0, 2)]  # the same network: e01 = none kills e12, e13
        return dup + [self.space.sample(self.rng) for _ in range(self.fresh)]

    def _tell(self, evaluations):
        self.told.append(evaluations)


@pytest.fixture()
def counting():
    ev = CountingEvaluator(SPACE)
    return ev, Problem(SPACE, ["error", "latency_ms"], [ev], ["latency_ms <= 5"])


def _key(result: SearchResult):
    return [(e.genome, e.vector, e.feasible) for e in result.evaluations], [
        (e.genome, e.vector) for e in result.front
    ]


def test_budget_counts_distinct_canonical_evaluations(counting):
    ev, problem = counting
    result = minimize(problem, Repeater, budget=40, seed=0)
    assert result.num_evaluations == 40 == ev.calls
    assert len({e.genome for e in result.evaluations}) == 40
    assert all(SPACE.canonical(e.genome) == e.genome for e in result.evaluations)


def test_tell_gets_one_evaluation_per_asked_genome_in_order(counting):
    _, problem = counting
    algo_holder = {}

    def factory(space, seed):
        algo_holder["a"] = Repeater(space, seed=seed, fresh=0)
        return algo_holder["a"]

    result = minimize(problem, factory, budget=1, seed=0)
    # The first ask: two genomes of one network, evaluated once, told twice.
    first = algo_holder["a"].told[0]
    assert len(first) == 2 and first[0] is first[1]
    assert result.stop_reason == "budget" and result.num_evaluations == 1


def test_stalled_search_stops(counting):
    _, problem = counting
    result = minimize(problem, functools.partial(Repeater, fresh=0), budget=10, seed=0)
    assert result.stop_reason == "stalled" and result.num_evaluations == 1


def test_infeasible_candidates_never_enter_the_front(counting):
    _, problem = counting
    result = minimize(problem, "random", budget=200, seed=0)
    assert result.front and all(e.feasible for e in result.front)
    assert result.num_feasible < result.num_evaluations  # some were infeasible
    assert all(e.objectives["latency_ms"] <= 5 for e in result.front)


def test_unsatisfiable_constraint_gives_a_clear_empty_result(counting):
    ev, _ = counting
    problem = Problem(SPACE, ["error", "latency_ms"], [ev], ["latency_ms <= 0.01"])
    result = minimize(problem, "nsga2", budget=60, seed=0)
    assert result.front == () and result.num_feasible == 0
    assert result.message == "no feasible architecture found after 60 evaluations"


@pytest.mark.parametrize("budget", [0, -3, 15626, 2.5])
def test_bad_budgets_are_refused(counting, budget):
    _, problem = counting
    with pytest.raises(InvalidInputError, match="budget"):
        minimize(problem, "random", budget=budget)


def test_every_evaluation_is_in_the_store(counting, tmp_path):
    _, problem = counting
    with RunStore(tmp_path / "store.sqlite") as store:
        result = minimize(problem, "nsga2", budget=80, seed=1, store=store)
        rows = store.evaluations()
    assert [r.key for r in rows] == [e.arch for e in result.evaluations]
    first = rows[0]
    e = result.evaluations[0]
    assert first.genome == e.genome and first.objectives == e.objectives
    assert first.constraints == {"latency_ms <= 5": e.objectives["latency_ms"]}
    assert first.feasible == e.feasible


class _Interrupt(Exception):
    pass


def _interrupt_after(n):
    def report(state):
        if state.evaluations >= n:
            raise _Interrupt

    return report


@pytest.mark.parametrize("name", ["nsga2", "pls", "regularized_evolution", "wsea"])
def test_resume_gives_the_uninterrupted_result_without_reevaluating(tmp_path, name):
    settings = {"num_calibration": 60} if name == "wsea" else None
    ev = CountingEvaluator(SPACE)
    problem = Problem(SPACE, ["error", "latency_ms"], [ev], ["latency_ms <= 5"])
    whole = minimize(problem, name, budget=150, seed=3, settings=settings)

    ev.calls = 0
    with RunStore(tmp_path / "store.sqlite") as store:
        with pytest.raises(_Interrupt):
            minimize(
                problem,
                name,
                budget=150,
                seed=3,
                settings=settings,
                store=store,
                progress=_interrupt_after(70),
            )
        done = len(store)
    assert 70 <= done < 150 and ev.calls == done

    ev.calls = 0
    with RunStore(tmp_path / "store.sqlite") as store:
        resumed = minimize(problem, name, budget=150, seed=3, settings=settings, store=store, resume=True)
        assert len(store) == 150
    assert ev.calls == 150 - done  # nothing stored was evaluated again
    assert resumed.num_resumed == done
    assert _key(resumed) == _key(whole)


def test_crash_in_the_middle_of_a_batch_resumes_identically(tmp_path):
    ev = CountingEvaluator(SPACE)
    problem = Problem(SPACE, ["error", "latency_ms"], [ev])
    whole = minimize(problem, "nsga2", budget=120, seed=4)
    ev.calls, ev.fail_at = 0, 77  # inside the second generation's batch of 50
    with RunStore(tmp_path / "store.sqlite") as store:
        with pytest.raises(RuntimeError, match="crashed"):
            minimize(problem, "nsga2", budget=120, seed=4, store=store)
        assert len(store) == 76
    ev.calls, ev.fail_at = 0, None
    with RunStore(tmp_path / "store.sqlite") as store:
        resumed = minimize(problem, "nsga2", budget=120, seed=4, store=store, resume=True)
    assert ev.calls == 120 - 76
    assert _key(resumed) == _key(whole)


def test_store_with_a_search_needs_resume_and_the_same_search(counting, tmp_path):
    _, problem = counting
    with RunStore(tmp_path / "store.sqlite") as store:
        minimize(problem, "random", budget=20, seed=0, store=store)
        with pytest.raises(InvalidInputError, match="--resume"):
            minimize(problem, "random", budget=20, seed=0, store=store)
        with pytest.raises(InvalidInputError, match="seed differ"):
            minimize(problem, "random", budget=20, seed=1, store=store, resume=True)
        with pytest.raises(InvalidInputError, match="algorithm"):
            minimize(problem, "nsga2", budget=20, seed=0, store=store, resume=True)
        assert len(store) == 20  # refused calls left it as it was
        longer = minimize(problem, "random", budget=30, seed=0, store=store, resume=True)
        assert longer.num_resumed == 20 and longer.num_evaluations == 30 == len(store)


def test_result_round_trips_through_json(counting):
    import json

    _, problem = counting
    result = minimize(problem, "random", budget=30, seed=0)
    back = SearchResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert _key(back) == _key(result) and back.settings == result.settings


@pytest.fixture(scope="module")
def table_problem(tmp_path_factory):
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("tables")
    genomes = list(itertools.product(range(5), repeat=6))
    write_arch_table(
        root / "acc.csv",
        [(i, SPACE.to_string(g), [rng.uniform(50, 95)]) for i, g in enumerate(genomes)],
        ["accuracy"],
    )
    write_arch_table(
        root / "dev.csv",
        [(i, SPACE.to_string(g), [rng.uniform(1, 9)]) for i, g in enumerate(genomes)],
        ["latency_ms"],
    )
    return build_problem(
        "nb201", "error,latency_ms", accuracy_table=root / "acc.csv", device=f"table:{root / 'dev.csv'}"
    )


@pytest.mark.slow
def test_process_executor_gives_the_inprocess_result(table_problem):
    from slimforge.search.executors import make_executor

    here = minimize(table_problem, "nsga2", budget=60, seed=5)
    with make_executor("process", workers=2, chunksize=20) as executor:
        there = minimize(table_problem, "nsga2", budget=60, seed=5, executor=executor)
    assert _key(here) == _key(there)


class ErrorScreen(Evaluator):
    """A perfect 'predictor' of the counting problem's error, counting its calls."""

    def __init__(self, space):
        super().__init__(space, ("predicted_error",))
        self.calls = 0

    def _evaluate(self, genome):
        self.calls += 1
        s = sum(genome) + 0.37 * genome[0] + 0.11 * genome[5]
        return {"predicted_error": 40.0 - s}


def test_screen_evaluates_only_the_candidates_predicted_best(counting):
    ev, problem = counting
    plain = minimize(problem, "random", budget=40, seed=3)
    screen = ErrorScreen(SPACE)
    screened = minimize(problem, "random", budget=40, seed=3, screen=screen, screen_keep=0.25)
    assert screened.num_evaluations == 40 and screened.num_screened_out > 0
    assert screen.calls >= 40 + screened.num_screened_out  # the screen saw every new candidate
    # the expensive objective ran only on the screen's picks, which are better on average
    mean = lambda r: np.mean([e.objectives["error"] for e in r.evaluations])  # noqa: E731
    assert mean(screened) < mean(plain) - 2
    again = minimize(problem, "random", budget=40, seed=3, screen=ErrorScreen(SPACE), screen_keep=0.25)
    assert _key(again) == _key(screened)  # deterministic
    with pytest.raises(InvalidInputError, match="screen_keep"):
        minimize(problem, "random", budget=10, seed=3, screen=screen, screen_keep=0)


def test_screen_spec_must_be_cheap():
    from slimforge.search import make_screen

    with pytest.raises(InvalidInputError, match="not cheap"):
        make_screen("nb201", "table:x.csv")


def test_a_termination_object_adds_a_reason_to_stop(counting):
    from slimforge.search import MaxSeconds
    from slimforge.search.termination import SearchState, Termination

    class AfterTen(Termination):
        def _reason(self, state: SearchState) -> str | None:
            return "ten is enough" if state.evaluations >= 10 else None

    _, problem = counting
    result = minimize(problem, Repeater, budget=40, seed=0, termination=AfterTen())
    assert result.stop_reason == "ten is enough" and 10 <= result.num_evaluations < 40
    assert minimize(problem, Repeater, budget=40, seed=0).stop_reason == "budget"
    with pytest.raises(Exception, match="positive number of seconds"):
        MaxSeconds(0)
