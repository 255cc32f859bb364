"""Progress of a running search: a snapshot type and a tqdm bar on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimforge.search.evaluation import Evaluation
from slimforge.search.indicators import hypervolume, normalise

__all__ = ["SearchProgress", "TqdmProgress", "running_hypervolume"]


@dataclass(frozen=True)
class SearchProgress:
    """A snapshot after each ask/tell round.

    ``hypervolume`` is that of the current feasible front, normalised over the feasible points
    seen so far with the reference point at 1.1 in every objective; it rises as the front
    improves but is only comparable within one run.
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


class TqdmProgress:
    """A tqdm bar on stderr: evaluations out of the budget, front size and hypervolume."""

    def __init__(self, budget: int, *, desc: str = "search") -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=budget, desc=desc, unit="eval", file=sys.stderr, dynamic_ncols=True, leave=True
        )

    def __call__(self, state: SearchProgress) -> None:
        self._bar.n = state.evaluations
        self._bar.set_postfix(front=state.front_size, feasible=state.feasible, hv=f"{state.hypervolume:.4f}")

    def close(self) -> None:
        """End the bar."""
        self._bar.close()
