"""Quality indicators of a found set against a true front: hypervolume and IGD+ (pymoo)."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd_plus import IGDPlus

__all__ = ["hv_contributions", "hypervolume", "igd_plus", "normalise"]


def normalise(F: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Min-max normalise the columns of ``F`` to [0, 1] over ``lower``..``upper`` (a zero range maps to 0)."""
    F = np.asarray(F, dtype=float).reshape(-1, len(lower))
    span = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    return (F - lower) / np.where(span > 0, span, 1.0)


def hypervolume(F: np.ndarray, ref_point: np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``F`` and bounded by ``ref_point`` (minimisation).

    Rows that do not strictly dominate the reference point add nothing and are dropped.
    """
    ref_point = np.asarray(ref_point, dtype=float)
    F = np.asarray(F, dtype=float).reshape(-1, len(ref_point))
    F = F[np.all(F < ref_point, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=ref_point)(F))


def igd_plus(F: np.ndarray, true_front: np.ndarray) -> float:
    """IGD+ (Ishibuchi et al. 2015): mean over true-front points of the dominance-aware distance to ``F``."""
    true_front = np.asarray(true_front, dtype=float)
    F = np.asarray(F, dtype=float).reshape(-1, true_front.shape[1])
    if len(F) == 0:
        return float("inf")
    return float(IGDPlus(true_front)(F))


def hv_contributions(F: np.ndarray, ref_point: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume contribution of each row of a non-dominated set ``F``.

    The contribution of a point is the hypervolume lost when it is removed; points that do not
    dominate ``ref_point`` contribute 0. Exact sweep in two objectives, leave-one-out otherwise.
    """
    ref_point = np.asarray(ref_point, dtype=float)
    F = np.asarray(F, dtype=float).reshape(-1, len(ref_point))
    out = np.zeros(len(F))
    inside = np.flatnonzero(np.all(F < ref_point, axis=1))
    if len(inside) == 0:
        return out
    P = F[inside]
    if P.shape[1] == 2:
        order = np.lexsort((P[:, 1], P[:, 0]))
        x, y = P[order, 0], P[order, 1]
        right = np.append(x[1:], ref_point[0])
        above = np.insert(y[:-1], 0, ref_point[1])
        out[inside[order]] = np.clip(right - x, 0, None) * np.clip(above - y, 0, None)
        return out
    total = hypervolume(P, ref_point)
    for k in range(len(P)):
        out[inside[k]] = total - hypervolume(np.delete(P, k, axis=0), ref_point)
    return out
