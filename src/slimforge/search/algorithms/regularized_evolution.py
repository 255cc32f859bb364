"""Regularised (aging) evolution (Real et al., AAAI 2019) with a non-dominated tournament."""

from __future__ import annotations

from collections import deque

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count, objective_matrix
from slimforge.search.evaluation import Evaluation
from slimforge.search.pareto import constrained_rank
from slimforge.spaces import Genome, SearchSpace

__all__ = ["RegularizedEvolution"]

_MAX_TRIES = 20


class RegularizedEvolution(Algorithm):
    """Aging evolution made multi-objective by its tournament.

    A population of ``population_size`` lives in a queue. Each child comes from a tournament:
    ``sample_size`` members are drawn, and the parent is drawn uniformly among the sample's
    non-dominated members (constrained domination). The child changes one gene of the parent;
    a child whose canonical form was proposed before is redrawn (the engine would only answer it
    from memory, and copies would crowd the population out). The oldest member dies for each new
    one. ``batch_size`` children are asked at a time so that executors can run them in parallel.

    Args:
        space: the search space.
        seed: random seed.
        population_size: size of the aging population (initialised at random).
        sample_size: tournament size.
        batch_size: children per ask.
    """

    name = "regularized_evolution"
    _settings = ("population_size", "sample_size", "batch_size")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        population_size: int = 50,
        sample_size: int = 10,
        batch_size: int = 10,
    ) -> None:
        super().__init__(space, seed=seed)
        check_count("population_size", population_size, space, minimum=2, default=50)
        check_count("sample_size", sample_size, space, default=10)
        check_count("batch_size", batch_size, space, default=10)
        if sample_size > population_size:
            raise InvalidInputError(
                f"sample_size {sample_size} must not exceed population_size {population_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.batch_size = int(batch_size)
        self.population: deque[Evaluation] = deque()
        self._proposed: set[Genome] = set()
        self._initialised = False

    def _ask(self) -> list[Genome]:
        if not self._initialised:
            return self._sample_new(self.population_size, self._proposed)
        if not self.population:
            return []
        children = []
        for _ in range(self.batch_size):
            child = self._child()
            if child is not None:
                self._proposed.add(child)
                children.append(child)
        return children

    def _child(self) -> Genome | None:
        members = list(self.population)
        for _ in range(_MAX_TRIES):
            picks = self.rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
            sample = [members[i] for i in picks]
            F, violation = objective_matrix(sample)
            best = [s for s, r in zip(sample, constrained_rank(F, violation)) if r == 0]
            parent = best[int(self.rng.integers(len(best)))].genome
            neighbours = self.space.neighbours(parent)
            child = self.space.canonical(neighbours[int(self.rng.integers(len(neighbours)))])
            if child not in self._proposed and child != parent:
                return child
        # The neighbourhoods of the winners are spent: a random genome keeps the search moving.
        fresh = self._sample_new(1, self._proposed)
        return fresh[0] if fresh else None

    def _tell(self, evaluations: list[Evaluation]) -> None:
        self._initialised = True
        for e in evaluations:
            self.population.append(e)
            if len(self.population) > self.population_size:
                self.population.popleft()
