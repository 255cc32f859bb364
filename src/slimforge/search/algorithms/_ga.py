"""The offspring scheme of the hardware co-design study's evolutionary searches.

Each generation (study Table 5-2): ``n_crossover`` children by uniform crossover of two parents
from the best ``n_parents`` of the population, ``n_mutation`` children by per-gene mutation of
tournament-selected members, and ``n_random`` random genomes. NSGA-II, WSEA and CEA share it and
differ only in how they rank the population.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["GA_DEFAULTS", "GenerationalGA", "check_int", "offspring"]

GA_DEFAULTS = {
    "pop_size": 50,
    "iterations": 20,
    "mutation_prob": 0.1,
    "n_parents": 10,
    "n_crossover": 20,
    "n_mutation": 25,
    "n_random": 5,
}

# Attempts at drawing a child that is new to the population before accepting a repeat.
_MAX_TRIES = 20


def offspring(
    space: SearchSpace,
    rng: np.random.Generator,
    ranked: Sequence[Genome],
    *,
    n_parents: int,
    n_crossover: int,
    n_mutation: int,
    n_random: int,
    mutation_prob: float,
    exclude: set[Genome],
) -> list[Genome]:
    """One generation's children (canonical genomes) from a population ranked best first.

    ``exclude`` (updated in place) holds the canonical genomes a child should avoid: the
    current population, the children drawn so far, and whatever the caller adds.
    """
    parents = list(ranked[: max(2, n_parents)])
    children: list[Genome] = []

    def accept(draw) -> None:
        child = draw()
        for _ in range(_MAX_TRIES - 1):
            if child not in exclude:
                break
            child = draw()
        exclude.add(child)
        children.append(child)

    def cross() -> Genome:
        i, j = rng.choice(len(parents), size=2, replace=False) if len(parents) > 1 else (0, 0)
        return space.canonical(space.crossover(parents[i], parents[j], rng))

    def tournament() -> Genome:
        # Binary tournament on the ranking: the better-placed of two random members wins.
        i, j = rng.integers(len(ranked), size=2)
        return ranked[min(i, j)]

    def mutate() -> Genome:
        return space.canonical(space.mutate(tournament(), rng, mutation_prob))

    def random() -> Genome:
        return space.canonical(space.sample(rng))

    for _ in range(n_crossover):
        accept(cross)
    for _ in range(n_mutation):
        accept(mutate)
    for _ in range(n_random):
        accept(random)
    return children


class GenerationalGA(Algorithm):
    """A generational GA with the study's offspring scheme; subclasses rank the population.

    The first ask returns the initial sample (:meth:`_initial`); each later ask one generation
    of children; each tell merges the children into the population (without duplicates) and
    keeps the best ``pop_size`` by :meth:`_order`.

    Args:
        space: the search space.
        seed: random seed.
        pop_size: population kept between generations.
        iterations: generations after the initial sample (``None``: until the budget ends).
        mutation_prob: per-gene mutation probability.
        n_parents: size of the crossover parent pool (the best of the population).
        n_crossover / n_mutation / n_random: children of each kind per generation.
    """

    _settings = (
        "pop_size",
        "iterations",
        "mutation_prob",
        "n_parents",
        "n_crossover",
        "n_mutation",
        "n_random",
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        pop_size: int = GA_DEFAULTS["pop_size"],
        iterations: int | None = GA_DEFAULTS["iterations"],
        mutation_prob: float = GA_DEFAULTS["mutation_prob"],
        n_parents: int = GA_DEFAULTS["n_parents"],
        n_crossover: int = GA_DEFAULTS["n_crossover"],
        n_mutation: int = GA_DEFAULTS["n_mutation"],
        n_random: int = GA_DEFAULTS["n_random"],
    ) -> None:
        super().__init__(space, seed=seed)
        for label, value in (("pop_size", pop_size), ("n_parents", n_parents)):
            check_count(label, value, space, minimum=1, default=GA_DEFAULTS[label])
        for label, value in (
            ("n_crossover", n_crossover),
            ("n_mutation", n_mutation),
            ("n_random", n_random),
        ):
            check_count(label, value, space, minimum=0, default=GA_DEFAULTS[label])
        if n_crossover + n_mutation + n_random == 0:
            raise InvalidInputError(
                "a generation needs at least one child (n_crossover + n_mutation + n_random > 0)"
            )
        if iterations is not None:
            check_int("iterations", iterations, minimum=0)
        if not 0.0 <= float(mutation_prob) <= 1.0:
            raise InvalidInputError(f"mutation_prob {mutation_prob!r} must lie in [0, 1]")
        self.pop_size = int(pop_size)
        self.iterations = None if iterations is None else int(iterations)
        self.mutation_prob = float(mutation_prob)
        self.n_parents = int(n_parents)
        self.n_crossover = int(n_crossover)
        self.n_mutation = int(n_mutation)
        self.n_random = int(n_random)
        self.population: list[Evaluation] = []
        self.generation = 0
        self._initialised = False

    @property
    def done(self) -> bool:
        return self._initialised and self.iterations is not None and self.generation >= self.iterations

    def _initial(self) -> list[Genome]:
        return self._sample_new(self.pop_size, set())

    def _tell_initial(self, evaluations: list[Evaluation]) -> None:
        self.population = self._select(evaluations)

    @abstractmethod
    def _order(self, evaluations: list[Evaluation]) -> np.ndarray:
        """Indices of ``evaluations``, best first."""

    def _ask(self) -> list[Genome]:
        if not self._initialised:
            return self._initial()
        if self.done or not self.population:
            return []
        return offspring(
            self.space,
            self.rng,
            [e.genome for e in self.population],
            n_parents=self.n_parents,
            n_crossover=self.n_crossover,
            n_mutation=self.n_mutation,
            n_random=self.n_random,
            mutation_prob=self.mutation_prob,
            exclude={e.genome for e in self.population},
        )

    def _tell(self, evaluations: list[Evaluation]) -> None:
        if not self._initialised:
            self._initialised = True
            self._tell_initial(evaluations)
            return
        self.generation += 1
        self.population = self._select(self.population + evaluations)

    def _select(self, evaluations: list[Evaluation]) -> list[Evaluation]:
        seen: set[Genome] = set()
        unique = []
        for e in evaluations:
            if e.genome not in seen:
                seen.add(e.genome)
                unique.append(e)
        if not unique:
            return []
        return [unique[i] for i in self._order(unique)[: self.pop_size]]


def check_int(label: str, value: Any, *, minimum: int) -> None:
    """Raise InvalidInputError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{label} must be an int >= {minimum}, got {value!r}")
