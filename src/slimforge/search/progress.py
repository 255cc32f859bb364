"""Progress of a running search: a snapshot type and a bar on stderr (plain lines without a terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimforge.search.evaluation import Evaluation
from slimforge.search.indicators import hypervolume, normalise

__all__ = ["FixedHypervolume", "SearchProgress", "TqdmProgress", "running_hypervolume"]


@dataclass(frozen=True)
class SearchProgress:
    """A snapshot after each ask/tell round.

    ``hypervolume`` is that of the feasible front found so far, normalised by the range of the
    first feasible points seen and measured against a reference point fixed then (1.1 in every
    normalised objective, :class:`FixedHypervolume`): the front only improves, so the figure never
    falls. It is comparable within one run, not between runs.
    """

    evaluations: int
    budget: int
    feasible: int
    front_size: int
    hypervolume: float


def running_hypervolume(front: Sequence[Evaluation], seen_lower: np.ndarray, seen_upper: np.ndarray) -> float:
    """Hypervolume of ``front`` normalised over the seen range (reference point 1.1)."""
    if not front:
        return 0.0
    F = normalise(np.array([e.vector for e in front], dtype=float), seen_lower, seen_upper)
    return hypervolume(F, np.full(F.shape[1], 1.1))


class FixedHypervolume:
    """Hypervolume of a growing front against a normalisation and reference point fixed once.

    Normalising by the range of all points seen so far (as :func:`running_hypervolume` does) moves
    the yardstick as the search finds new extremes, so the figure can fall while the front only
    improves. Here the range is that of the first call's points and never changes; hypervolume is
    Pareto-compliant, so a front that only gains non-dominated points only gains hypervolume.
    """

    def __init__(self) -> None:
        self.lower: np.ndarray | None = None
        self.upper: np.ndarray | None = None

    def __call__(self, front: Sequence[Evaluation], points: np.ndarray) -> float:
        if not front:
            return 0.0
        if self.lower is None:
            self.lower, self.upper = points.min(axis=0), points.max(axis=0)
        return running_hypervolume(front, self.lower, self.upper)


class TqdmProgress:
    """A bar on stderr (plain lines without a terminal): evaluations of the budget, front size, hypervolume."""

    def __init__(self, budget: int, *, desc: str = "search") -> None:
        from slimforge.io import progress_bar

        self._bar = progress_bar(total=budget, desc=desc, unit="eval", dynamic_ncols=True, leave=True)

    def __call__(self, state: SearchProgress) -> None:
        self._bar.update(state.evaluations - self._bar.n)
        self._bar.set_postfix(front=state.front_size, feasible=state.feasible, hv=f"{state.hypervolume:.4f}")

    def close(self) -> None:
        """End the bar."""
        self._bar.close()
