"""The ask/tell interface every search algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["MAX_POPULATION", "Algorithm", "check_count", "objective_matrix"]

#: The most genomes any count setting (population, batch, children, calibration sample) may ask
#: for, whatever the space: sampling that many takes seconds already, and far more than any
#: published search uses. Counts are also bounded by the space's size (see :func:`check_count`).
MAX_POPULATION = 100_000


class Algorithm(ABC):
    """A search algorithm driven by ``ask()`` / ``tell(evaluations)``.

    ``ask`` proposes genomes; ``tell`` gets back the evaluations of the asked genomes in ask
    order, each for the genome's canonical form (so several asked genomes may come back as the
    same evaluation). ``tell`` may get fewer evaluations than were asked when the budget runs
    out. All randomness comes from ``seed``, so the same seed and the same told values give the
    same proposals.

    Args:
        space: the search space.
        seed: seed of the algorithm's random generator.
    """

    name: str = ""
    #: the attributes :meth:`settings` reports: the constructor's settings, stored under their own names.
    _settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: SearchSpace, *, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative int, got {seed!r}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._awaiting_tell = False

    def ask(self) -> list[Genome]:
        """Genomes to evaluate next; an empty list means the algorithm has finished."""
        if self._awaiting_tell:
            raise InvalidInputError(
                f"{self.name}: ask() called twice; tell() the evaluations of the last ask first"
            )
        genomes = [self.space.validate(g) for g in self._ask()]
        self._awaiting_tell = bool(genomes)
        return genomes

    def tell(self, evaluations: Sequence[Evaluation]) -> None:
        """Evaluations of the last ask's genomes, in ask order."""
        if not self._awaiting_tell:
            raise InvalidInputError(f"{self.name}: tell() without a pending ask(); call ask() first")
        self._awaiting_tell = False
        self._tell(list(evaluations))

    @property
    def done(self) -> bool:
        """True once the algorithm has nothing more to ask (e.g. its iterations are spent)."""
        return False

    def settings(self) -> dict[str, Any]:
        """The algorithm's settings as JSON (stored with a run; a resume must match them): by default
        the attributes :attr:`_settings` names, in that order."""
        return {name: getattr(self, name) for name in self._settings}

    def check_run(
        self, *, budget: int | None = None, lower_bounds: Mapping[str, float] | None = None
    ) -> None:
        """Refuse, before anything is evaluated, a run this algorithm cannot do as configured.

        Called by the tabular benchmark (and meant for every caller that knows the run) before
        the first ask. The default accepts everything.

        Args:
            budget: distinct evaluations the run may make (e.g. BO refuses one below its
                initial design).
            lower_bounds: metric name -> the smallest value any genome of the space has, where
                known (a tabular oracle knows it; e.g. the RL controller refuses a latency
                target below the cheapest network's).

        Raises:
            InvalidInputError: naming the setting and the fix.
        """

    def run_notes(self, *, budget: int) -> list[str]:
        """Sentences a caller should print with the result of a run of ``budget`` evaluations.

        For what the user would otherwise misread: e.g. WSEA at a budget its calibration
        sample consumes whole is random search. The default has none.
        """
        return []

    @abstractmethod
    def _ask(self) -> list[Genome]:
        """Propose genomes."""

    @abstractmethod
    def _tell(self, evaluations: list[Evaluation]) -> None:
        """Take the evaluations of the last proposals."""

    # ------------------------------------------------------------------ helpers
    def _sample_new(self, count: int, exclude: set[Genome], max_tries: int = 50) -> list[Genome]:
        """``count`` random canonical genomes outside ``exclude`` (fewer if the space runs out)."""
        out: list[Genome] = []
        # More distinct genomes than the space holds cannot be found; trying would spin for ever.
        for _ in range(min(count, max(self.space.size - len(exclude), 0))):
            for _ in range(max_tries):
                g = self.space.canonical(self.space.sample(self.rng))
                if g not in exclude:
                    break
            else:
                continue
            exclude.add(g)
            out.append(g)
        return out


def check_count(label: str, value: Any, space: SearchSpace, *, minimum: int = 1, default: int) -> int:
    """``value`` as an int in ``[minimum, min(space.size, MAX_POPULATION)]``, or a one-line error.

    A count of genomes (population, batch, children, calibration sample) cannot usefully exceed
    the number of architectures: ``pop_size=10**9`` on NB-201 would spin for minutes drawing
    repeats. ``default`` (the algorithm's own default) is let through on a space smaller than it;
    the sampling then stops at the space's size.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{label} must be an int >= {minimum}, got {value!r}")
    value = int(value)
    if value > MAX_POPULATION or (value > space.size and value != default):
        limit = min(space.size, MAX_POPULATION)
        bound = (
            f"the {space.size:,} architectures of the {space.name} space"
            if space.size <= MAX_POPULATION
            else f"slimforge's maximum of {MAX_POPULATION:,} genomes"
        )
        raise InvalidInputError(f"{label} {value:,} exceeds {bound}; set {label} to at most {limit:,}")
    return value


def objective_matrix(evaluations: Sequence[Evaluation]) -> tuple[np.ndarray, np.ndarray]:
    """Objective values (rows = evaluations) and violations of ``evaluations``.

    A NaN objective (an evaluation that failed) counts as +inf so that it is never preferred.
    """
    if not evaluations:
        return np.zeros((0, 0)), np.zeros(0)
    F = np.array([e.vector for e in evaluations], dtype=float)
    F[np.isnan(F)] = np.inf
    violation = np.array([e.violation for e in evaluations], dtype=float)
    return F, violation
