"""The one architecture each search algorithm reports, chosen as the co-design study does.

The study's tables give one row per algorithm: WSEA returns the individual with the best weighted
sum of standardised objectives (its own fitness, with the mean and standard deviation it estimated
from its random calibration sample), CEA the most accurate individual within its ε-constraints (the
60th percentiles of that sample), and NSGA-II a front, of which the knee point (the point of maximum
bulge of the normalised front; :func:`slimforge.search.knee_point`) is reported. Any other algorithm
reports its knee point too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from slimforge.registry import Registry
from slimforge.search import Evaluation, SearchResult, knee_point

__all__ = ["REPRESENTATIVES", "representative"]

Rule = Callable[[SearchResult, Any], "tuple[Evaluation | None, str]"]


def _matrix(evaluations: list[Evaluation]) -> np.ndarray:
    return np.array([e.vector for e in evaluations], dtype=float).reshape(len(evaluations), -1)


def _knee(result: SearchResult, algorithm: Any) -> tuple[Evaluation | None, str]:
    return knee_point(result), "knee point of the front (max. bulge, min-max normalised)"


def _weighted_sum(result: SearchResult, algorithm: Any) -> tuple[Evaluation | None, str]:
    ok = [e for e in result.evaluations if e.feasible]
    if not ok:
        return None, "best weighted sum"
    with np.errstate(invalid="ignore"):
        fitness = ((_matrix(ok) - algorithm.mean) / algorithm.std).mean(axis=1)
    fitness[np.isnan(fitness)] = np.inf
    rule = "best weighted sum of objectives standardised on the calibration sample"
    return ok[int(np.argmin(fitness))], rule


def _epsilon(result: SearchResult, algorithm: Any) -> tuple[Evaluation | None, str]:
    ok = [e for e in result.evaluations if e.feasible]
    rule = "most accurate within the ε-constraints (calibration-sample percentiles)"
    if not ok:
        return None, rule
    F = _matrix(ok)
    within = np.all(F[:, 1:] <= algorithm.epsilon, axis=1)
    if within.any():
        idx = np.flatnonzero(within)
        return ok[int(idx[np.argmin(F[idx, 0])])], rule
    # Nothing met every bound: the least excess, as CEA itself ranks them.
    scale = np.where(algorithm.epsilon != 0, np.abs(algorithm.epsilon), 1.0)
    excess = (np.maximum(F[:, 1:] - algorithm.epsilon, 0.0) / scale).sum(axis=1)
    return ok[int(np.lexsort((F[:, 0], excess))[0])], rule + " (none met them: least excess)"


#: algorithm name -> rule picking its reported architecture; unlisted algorithms report their knee point.
REPRESENTATIVES: Registry[Rule] = Registry("representative rule")
REPRESENTATIVES.register("nsga2", _knee)
REPRESENTATIVES.register("wsea", _weighted_sum)
REPRESENTATIVES.register("cea", _epsilon)


def representative(name: str, result: SearchResult, algorithm: Any) -> tuple[Evaluation | None, str]:
    """The architecture algorithm ``name`` reports from ``result`` and the rule that chose it.

    Args:
        name: the algorithm's registry name.
        result: its search result.
        algorithm: the algorithm instance after the search (WSEA and CEA read their calibration).
    """
    rule = REPRESENTATIVES.get(name) if name in REPRESENTATIVES else _knee
    return rule(result, algorithm)
