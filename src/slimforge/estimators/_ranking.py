"""Rank correlation against ground truth, and ensembles of proxies (rank averaging, voting).

Non-finite scores are never ordered silently: every function takes ``nonfinite``, either
``"drop"`` (the architecture is left out of the ranking and counted) or ``"order"`` (``-inf`` below
and ``+inf`` above every finite score, NaN still left out), and the results count what was left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slimforge.errors import InvalidInputError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ENSEMBLE_RULES",
    "Correlation",
    "CorrelationRecord",
    "correlate",
    "ensemble",
    "normalized_ranks",
    "rank_average",
    "vote",
]

NONFINITE_POLICIES = ("drop", "order")


def _check_policy(nonfinite: str) -> None:
    if nonfinite not in NONFINITE_POLICIES:
        raise InvalidInputError(f"nonfinite={nonfinite!r}: choose 'drop' or 'order'")


def _rankable(scores: np.ndarray, nonfinite: str) -> np.ndarray:
    """Mask of the scores that take part in a ranking under ``nonfinite``."""
    _check_policy(nonfinite)
    return np.isfinite(scores) if nonfinite == "drop" else ~np.isnan(scores)


def normalized_ranks(scores: Sequence[float] | np.ndarray, nonfinite: str = "drop") -> np.ndarray:
    """Average ranks scaled to (0, 1] (1 = highest score); scores left out by ``nonfinite`` get NaN."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    keep = _rankable(s, nonfinite)
    out = np.full(len(s), np.nan)
    if keep.any():
        out[keep] = rankdata(s[keep]) / keep.sum()
    return out


class CorrelationRecord:
    """``to_dict`` / ``from_dict`` of a frozen dataclass whose ``spearman_rho`` and ``kendall_tau`` may be
    NaN (undefined), written as JSON ``null``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (an undefined correlation is ``null``)."""
        d = dict(self.__dict__)
        for k in ("spearman_rho", "kendall_tau"):
            d[k] = None if math.isnan(d[k]) else d[k]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        for k in ("spearman_rho", "kendall_tau"):
            d[k] = math.nan if d[k] is None else float(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Correlation(CorrelationRecord):
    """Rank agreement of a score with the ground truth over the architectures it could rank.

    Attributes:
        name: the proxy or ensemble.
        spearman_rho: Spearman's ρ (NaN when fewer than 3 architectures remain or a side is constant).
        kendall_tau: Kendall's τ-b.
        num_archs: architectures ranked.
        num_nan: architectures left out because the score is NaN (skipped proxies included).
        num_inf: architectures whose score is ±inf (left out under ``"drop"``, ordered under ``"order"``).
        nonfinite: the policy used.
    """

    name: str
    spearman_rho: float
    kendall_tau: float
    num_archs: int
    num_nan: int
    num_inf: int
    nonfinite: str


def correlate(
    name: str,
    scores: Sequence[float] | np.ndarray,
    truth: Sequence[float] | np.ndarray,
    nonfinite: str = "drop",
) -> Correlation:
    """Spearman ρ and Kendall τ of ``scores`` against ``truth`` (e.g. test accuracy)."""
    from scipy.stats import kendalltau, spearmanr

    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1:
        raise InvalidInputError(
            f"{name}: got {s.shape} scores for {t.shape} ground-truth values; give one per architecture"
        )
    keep = _rankable(s, nonfinite) & np.isfinite(t)
    rho = tau = math.nan
    if keep.sum() >= 3 and np.ptp(s[keep]) > 0 and np.ptp(t[keep]) > 0:
        # rankdata-based ranks make ±inf (kept under "order") behave as the extreme values they are.
        r = normalized_ranks(s[keep], "order")
        rho = float(spearmanr(r, t[keep])[0])
        tau = float(kendalltau(r, t[keep])[0])
    return Correlation(
        name, rho, tau, int(keep.sum()), int(np.isnan(s).sum()), int(np.isinf(s).sum()), nonfinite
    )


def _stack(columns: Mapping[str, Sequence[float] | np.ndarray]) -> tuple[list[str], np.ndarray]:
    if len(columns) < 1:
        raise InvalidInputError("an ensemble needs at least one proxy's scores")
    names = list(columns)
    arrays = [np.asarray(columns[n], dtype=np.float64) for n in names]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise InvalidInputError(
            f"ensemble members {names} must score the same architectures (one 1-D array each)"
        )
    return names, np.stack(arrays)


def rank_average(
    columns: Mapping[str, Sequence[float] | np.ndarray],
    weights: Mapping[str, float] | None = None,
    nonfinite: str = "drop",
) -> np.ndarray:
    """Weighted mean of each proxy's normalised rank (Abdelfattah et al.; Krishnakumar et al., 2022).

    An architecture that any member leaves out (under ``nonfinite``) gets NaN.

    Args:
        columns: proxy name -> scores of the same architectures.
        weights: proxy name -> non-negative weight (default: equal).
        nonfinite: ``"drop"`` or ``"order"`` (see the module docstring).
    """
    names, mat = _stack(columns)
    w = np.array([1.0 if weights is None else float(weights.get(n, 0.0)) for n in names])
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise InvalidInputError(
            f"rank-average weights {dict(zip(names, w))} must be non-negative with a positive sum"
        )
    ranks = np.stack([normalized_ranks(row, nonfinite) for row in mat])
    return (w[:, None] * ranks).sum(0) / w.sum()


def vote(columns: Mapping[str, Sequence[float] | np.ndarray], nonfinite: str = "drop") -> np.ndarray:
    """Majority vote (Abdelfattah et al., ICLR 2021): the share of other architectures each one beats.

    Architecture ``i`` beats ``j`` when more than half of the proxies score ``i`` above ``j``; ties
    count half. An architecture that any member leaves out gets NaN and takes no part.
    """
    names, mat = _stack(columns)
    ranks = np.stack([normalized_ranks(row, nonfinite) for row in mat])
    keep = ~np.isnan(ranks).any(0)
    out = np.full(mat.shape[1], np.nan)
    r = ranks[:, keep]
    n = r.shape[1]
    if n == 0:
        return out
    if n == 1:
        out[keep] = 0.5
        return out
    wins = np.zeros(n)
    half = len(names) / 2.0
    # Row blocks keep the (proxies, block, n) comparison tensor small for thousands of architectures.
    for start in range(0, n, 256):
        block = r[:, start : start + 256]
        above = (block[:, :, None] > r[:, None, :]).sum(0)
        below = (block[:, :, None] < r[:, None, :]).sum(0)
        wins[start : start + 256] = (
            (above > half).sum(1) + 0.5 * ((above <= half) & (below <= half)).sum(1) - 0.5
        )
    out[keep] = wins / (n - 1)
    return out


#: ensemble rules by name, for the CLI's ``RULE:proxy+proxy`` specs.
ENSEMBLE_RULES = {"rank_average": rank_average, "vote": vote}


def ensemble(
    rule: str,
    columns: Mapping[str, Sequence[float] | np.ndarray],
    nonfinite: str = "drop",
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Combine proxies' scores with the rule named ``rule`` (``"rank_average"`` or ``"vote"``)."""
    if rule not in ENSEMBLE_RULES:
        raise InvalidInputError(f"unknown ensemble rule {rule!r} (known: {', '.join(ENSEMBLE_RULES)})")
    if rule == "vote":
        if weights is not None:
            raise InvalidInputError("the vote rule takes no weights; use rank_average for weighted ensembles")
        return vote(columns, nonfinite)
    return rank_average(columns, weights, nonfinite)
