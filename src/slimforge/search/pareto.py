"""Pareto utilities: non-dominated sorting (pymoo), crowding distance, constrained ranking.

All objectives are minimised. Constrained domination follows Deb et al. 2002 (NSGA-II): a
feasible point beats an infeasible one, and of two infeasible points the one with the smaller
total violation wins.
"""

from __future__ import annotations

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

__all__ = [
    "constrained_rank",
    "crowding_distance",
    "non_dominated_fronts",
    "pareto_mask",
    "rank_and_crowding",
    "survival_order",
]


def _as_matrix(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    return F.reshape(len(F), -1) if F.ndim != 2 else F


def non_dominated_fronts(F: np.ndarray) -> list[np.ndarray]:
    """Row indices of ``F`` grouped into fronts, best first (fast non-dominated sort)."""
    F = _as_matrix(F)
    if len(F) == 0:
        return []
    return [np.sort(np.asarray(f, dtype=int)) for f in NonDominatedSorting().do(F)]


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``F`` (equal rows are all kept)."""
    F = _as_matrix(F)
    mask = np.zeros(len(F), dtype=bool)
    if len(F):
        mask[np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=int)] = True
    return mask


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within one front.

    Per objective, the two boundary points get ``inf`` and an interior point the gap between
    its neighbours divided by the objective's range on the front; the distances add up.
    """
    F = _as_matrix(F)
    n, m = F.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        values = F[order, k]
        span = values[-1] - values[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (values[2:] - values[:-2]) / span
    return dist


def constrained_rank(F: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Front number of each row under constrained domination (0 = best).

    Feasible rows (violation 0) are ranked by non-dominated sorting; infeasible rows come
    after them, ranked by increasing violation (equal violations share a rank).
    """
    F = _as_matrix(F)
    violation = np.asarray(violation, dtype=float)
    rank = np.zeros(len(F), dtype=int)
    feasible = np.flatnonzero(violation <= 0)
    fronts = non_dominated_fronts(F[feasible])
    for r, front in enumerate(fronts):
        rank[feasible[front]] = r
    infeasible = np.flatnonzero(violation > 0)
    if len(infeasible):
        _, levels = np.unique(violation[infeasible], return_inverse=True)
        rank[infeasible] = len(fronts) + levels
    return rank


def rank_and_crowding(F: np.ndarray, violation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Constrained front rank and within-front crowding distance of each row."""
    F = _as_matrix(F)
    violation = np.zeros(len(F)) if violation is None else np.asarray(violation, dtype=float)
    rank = constrained_rank(F, violation)
    crowd = np.zeros(len(F))
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        crowd[idx] = crowding_distance(F[idx])
    return rank, crowd


def survival_order(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Row indices best first: by rank, then by larger crowding distance (NSGA-II survival)."""
    rank, crowd = rank_and_crowding(F, violation)
    return np.lexsort((-crowd, rank))
