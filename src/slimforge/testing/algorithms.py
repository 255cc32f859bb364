"""The search-algorithm contract as a pytest base class (as Optuna ships its sampler tests).

A user's own algorithm is checked by one subclass that supplies the ``algorithm`` fixture::

    from slimforge.testing.algorithms import AlgorithmContract, AlgorithmUnderTest

    class TestMyAlgorithm(AlgorithmContract):
        @pytest.fixture
        def algorithm(self):
            return AlgorithmUnderTest(MyAlgorithm, settings={"batch_size": 8})

The contract: ``ask`` proposes valid genomes and refuses a second ask before ``tell``; ``tell``
refuses a call without a pending ask and accepts fewer evaluations than were asked (the budget
ran out); ``settings()`` is JSON and recreates the algorithm; two searches with one seed make
the same evaluations in the same order and find the same front, and another seed searches
differently; a search interrupted mid-way and resumed from its run store through
``minimize(..., store=..., resume=True)`` ends exactly where the uninterrupted one does,
evaluating nothing twice. Everything runs on a toy trade-off over the NAS-Bench-201 space (or
the subclass's ``space`` fixture) in well under a second per test for a cheap algorithm.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from slimforge.errors import InvalidInputError
from slimforge.io import RunStore
from slimforge.search import Problem, make_algorithm, minimize
from slimforge.search.algorithms import Algorithm
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace, get_space

__all__ = ["AlgorithmContract", "AlgorithmUnderTest", "ToyTradeOff", "toy_problem"]


@dataclass(frozen=True)
class AlgorithmUnderTest:
    """What the contract runs: a registry name or factory, its settings, and the budget per search."""

    algorithm: str | Callable[..., Algorithm]
    settings: Mapping[str, Any] = field(default_factory=dict)
    budget: int = 60
    #: False for an algorithm that ignores its seed (an exhaustive enumeration, say).
    seeded: bool = True


class ToyTradeOff(Evaluator):
    """A deterministic error/latency trade-off over any space, counting its calls.

    Each gene choice adds a fixed, seeded amount of latency and takes off a correlated amount
    of error, plus a per-genome jitter, so fronts have many members and no algorithm finds them
    by accident.
    """

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, ("error", "latency_ms", "accuracy"))
        rng = np.random.default_rng(seed)
        self._cost = [rng.uniform(0.0, 1.0, n) for n in space.num_choices]
        self._gain = [c * 4.0 + rng.uniform(0.0, 1.5, len(c)) for c in self._cost]
        self.calls = 0

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        self.calls += 1
        jitter = np.random.default_rng(list(genome)).random(2)
        latency = 0.5 + sum(c[g] for c, g in zip(self._cost, genome)) + 0.3 * jitter[0]
        error = 60.0 - sum(s[g] for s, g in zip(self._gain, genome)) + 2.0 * jitter[1]
        return {"error": float(error), "latency_ms": float(latency), "accuracy": float(100.0 - error)}


def toy_problem(space: SearchSpace | None = None, constraints: tuple[str, ...] = ()) -> Problem:
    """The contract's problem: minimise (error, latency_ms) of :class:`ToyTradeOff` on ``space``."""
    space = space or get_space("nb201")
    return Problem(space, ["error", "latency_ms"], [ToyTradeOff(space)], list(constraints))


class _Interrupted(Exception):
    pass


class AlgorithmContract:
    """Subclass and override the ``algorithm`` fixture (and ``space`` for another space)."""

    @pytest.fixture
    def algorithm(self) -> AlgorithmUnderTest:
        raise NotImplementedError("override the 'algorithm' fixture with an AlgorithmUnderTest")

    @pytest.fixture
    def space(self) -> SearchSpace:
        return get_space("nb201")

    def _make(self, spec: AlgorithmUnderTest, space: SearchSpace, seed: int = 0) -> Algorithm:
        return make_algorithm(spec.algorithm, space, seed=seed, **dict(spec.settings))

    def _search(self, spec: AlgorithmUnderTest, problem: Problem, seed: int, **kwargs: Any):
        return minimize(
            problem, spec.algorithm, budget=spec.budget, seed=seed, settings=dict(spec.settings), **kwargs
        )

    # ------------------------------------------------------------------ ask / tell
    def test_ask_proposes_valid_genomes_and_tell_must_follow(self, algorithm, space):
        problem = toy_problem(space)
        algo = self._make(algorithm, space)
        with pytest.raises(InvalidInputError, match="ask"):
            algo.tell([])
        asked = algo.ask()
        assert asked, "the first ask proposed nothing"
        assert all(space.validate(g) == g for g in asked)
        with pytest.raises(InvalidInputError, match="twice"):
            algo.ask()
        algo.tell([problem.evaluate(space.canonical(g)) for g in asked])
        assert algo.ask(), "the second ask proposed nothing"

    def test_tell_accepts_fewer_evaluations_than_asked(self, algorithm, space):
        # minimize tells fewer when the budget ends inside a batch; the search must go on.
        problem = toy_problem(space)
        algo = self._make(algorithm, space)
        first = algo.ask()
        algo.tell([problem.evaluate(space.canonical(g)) for g in first])
        second = algo.ask()
        assert second
        algo.tell([problem.evaluate(space.canonical(g)) for g in second[: max(1, len(second) // 2)]])
        assert all(space.validate(g) == g for g in algo.ask())

    def test_settings_are_json_and_recreate_the_algorithm(self, algorithm, space):
        settings = self._make(algorithm, space).settings()
        back = json.loads(json.dumps(settings))
        assert back == settings
        if isinstance(algorithm.algorithm, str):
            again = make_algorithm(algorithm.algorithm, space, seed=0, **back)
            assert again.settings() == settings

    # ------------------------------------------------------------------ determinism
    def test_same_seed_gives_the_same_search(self, algorithm, space):
        problem = toy_problem(space)
        a = self._search(algorithm, problem, seed=7)
        b = self._search(algorithm, problem, seed=7)
        assert a.front, "the search found no front"
        assert [e.genome for e in a.evaluations] == [e.genome for e in b.evaluations]
        assert [(e.genome, e.vector) for e in a.front] == [(e.genome, e.vector) for e in b.front]
        if algorithm.seeded:
            c = self._search(algorithm, problem, seed=8)
            assert [e.genome for e in c.evaluations] != [e.genome for e in a.evaluations]

    # ------------------------------------------------------------------ resume
    def test_resume_from_store_ends_where_an_uninterrupted_search_ends(self, algorithm, space, tmp_path):
        problem = toy_problem(space, constraints=("latency_ms <= 3.5",))
        counter = problem.evaluators[0]
        whole = self._search(algorithm, problem, seed=3)
        stop_at = max(1, whole.num_evaluations // 2)

        def interrupt(state) -> None:
            if state.evaluations >= stop_at:
                raise _Interrupted

        counter.calls = 0
        with RunStore(tmp_path / "store.sqlite") as store:
            with pytest.raises(_Interrupted):
                self._search(algorithm, problem, seed=3, store=store, progress=interrupt)
            done = len(store)
        assert stop_at <= done < whole.num_evaluations and counter.calls == done

        counter.calls = 0
        with RunStore(tmp_path / "store.sqlite") as store:
            resumed = self._search(algorithm, problem, seed=3, store=store, resume=True)
        assert counter.calls == whole.num_evaluations - done, "a stored evaluation was made again"
        assert resumed.num_resumed == done
        assert [e.genome for e in resumed.evaluations] == [e.genome for e in whole.evaluations]
        assert [(e.genome, e.vector) for e in resumed.front] == [(e.genome, e.vector) for e in whole.front]
