"""When a search stops: termination objects checked before each ask/tell round (as pymoo's are).

:func:`slimforge.search.minimize` stops at the first of: the evaluation budget spent
(:class:`MaxEvaluations`), the algorithm finished (:class:`AlgorithmDone`), rounds in a row that
brought no new architecture (:class:`MaxStalledRounds`: the space is exhausted), and whatever
``termination=`` adds (a wall-clock limit, :class:`MaxSeconds`, or a user's own subclass).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from slimforge.errors import InvalidInputError

__all__ = [
    "AlgorithmDone",
    "AnyOf",
    "MaxEvaluations",
    "MaxSeconds",
    "MaxStalledRounds",
    "SearchState",
    "Termination",
    "default_termination",
]


@dataclass(frozen=True)
class SearchState:
    """What a termination may look at: distinct evaluations made, rounds without a new one, time."""

    evaluations: int
    stalled_rounds: int
    algorithm_done: bool
    elapsed_s: float


class Termination(ABC):
    """Decides whether a search stops before its next round."""

    def stop_reason(self, state: SearchState) -> str | None:
        """Why the search stops now (a short phrase for the result's ``stop_reason``), or None."""
        return self._reason(state)

    @abstractmethod
    def _reason(self, state: SearchState) -> str | None:
        """Hook: the reason to stop, or None to go on."""


@dataclass(frozen=True)
class MaxEvaluations(Termination):
    """Stop once ``budget`` distinct architectures are evaluated."""

    budget: int

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise InvalidInputError(f"budget must be a positive number of evaluations, got {self.budget!r}")

    def _reason(self, state: SearchState) -> str | None:
        return "budget" if state.evaluations >= self.budget else None


@dataclass(frozen=True)
class AlgorithmDone(Termination):
    """Stop when the algorithm says it has nothing more to ask."""

    def _reason(self, state: SearchState) -> str | None:
        return "algorithm finished" if state.algorithm_done else None


@dataclass(frozen=True)
class MaxStalledRounds(Termination):
    """Stop after ``rounds`` rounds in a row that brought no architecture not seen before."""

    rounds: int = 25

    def _reason(self, state: SearchState) -> str | None:
        return "stalled" if state.stalled_rounds >= self.rounds else None


@dataclass(frozen=True)
class MaxSeconds(Termination):
    """Stop once the search has run for ``seconds`` of wall-clock time."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise InvalidInputError(f"a time limit must be a positive number of seconds, got {self.seconds!r}")

    def _reason(self, state: SearchState) -> str | None:
        return "time limit" if state.elapsed_s >= self.seconds else None


@dataclass(frozen=True)
class AnyOf(Termination):
    """Stop at the first of several terminations (its reason)."""

    parts: tuple[Termination, ...]

    def _reason(self, state: SearchState) -> str | None:
        return next((r for r in (t.stop_reason(state) for t in self.parts) if r is not None), None)


def default_termination(budget: int, extra: Termination | None = None) -> Termination:
    """The terminations every search has, plus ``extra``."""
    parts: tuple[Termination, ...] = (MaxEvaluations(int(budget)), AlgorithmDone(), MaxStalledRounds())
    return AnyOf(parts + ((extra,) if extra is not None else ()))
