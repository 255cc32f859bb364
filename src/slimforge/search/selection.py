"""Picking one architecture from a search's results.

Every helper takes evaluations (a front, every evaluation, or a :class:`SearchResult`) and
returns one :class:`Evaluation` or None when nothing qualifies; infeasible candidates never
qualify. Metrics are read from ``Evaluation.metrics``, so non-objective metrics (``accuracy``,
``energy_mj``) work too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.constraint import Constraint
from slimforge.search.evaluation import Evaluation
from slimforge.search.result import SearchResult, feasible_front

__all__ = ["best", "knee_point", "within_of_best"]


def _candidates(source: SearchResult | Sequence[Evaluation]) -> list[Evaluation]:
    evaluations = source.evaluations if isinstance(source, SearchResult) else source
    return [e for e in evaluations if e.feasible]


def _metric(e: Evaluation, name: str) -> float:
    value = e.metrics.get(name, e.objectives.get(name))
    if value is None:
        known = sorted(set(e.metrics) | set(e.objectives))
        raise InvalidInputError(f"no metric {name!r} in the evaluations (they have: {', '.join(known)})")
    return float(value)


def best(
    source: SearchResult | Sequence[Evaluation],
    objective: str,
    *,
    constraints: Sequence[str | Constraint] = (),
) -> Evaluation | None:
    """The feasible candidate with the smallest ``objective`` that meets the extra ``constraints``.

    Ties go to the candidate evaluated first.
    """
    parsed = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]
    ok = [e for e in _candidates(source) if all(c.violation(_metric(e, c.metric)) == 0 for c in parsed)]
    ok = [e for e in ok if not math.isnan(_metric(e, objective))]
    return min(ok, key=lambda e: _metric(e, objective)) if ok else None


def knee_point(source: SearchResult | Sequence[Evaluation]) -> Evaluation | None:
    """The knee of the feasible non-dominated set.

    Definition: min-max normalise the front per objective (over the front itself); the knee is
    the point farthest below the hyperplane through the normalised extremes (the unit points),
    i.e. the point with the smallest sum of normalised objectives (Das 1999, "the point of
    maximum bulge"; Deb & Gupta 2011). In two objectives this is the point farthest from the
    line joining the two ends of the front. Ties go to the point with the smaller first objective.
    """
    evaluations = source.front if isinstance(source, SearchResult) else feasible_front(_candidates(source))
    if not evaluations:
        return None
    F = np.array([e.vector for e in evaluations], dtype=float)
    lower, upper = F.min(axis=0), F.max(axis=0)
    span = np.where(upper > lower, upper - lower, 1.0)
    score = ((F - lower) / span).sum(axis=1)
    order = sorted(range(len(evaluations)), key=lambda i: (score[i], evaluations[i].vector))
    return evaluations[order[0]]


def within_of_best(
    source: SearchResult | Sequence[Evaluation],
    eps: float,
    *,
    objective: str = "error",
    cost: str = "latency_ms",
) -> Evaluation | None:
    """The cheapest feasible candidate whose ``objective`` is within ``eps`` of the best one.

    E.g. ``within_of_best(result, 0.5)``: the lowest-latency network at most 0.5 points of
    error worse than the most accurate one found. Ties in cost go to the lower objective.
    """
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise InvalidInputError(f"eps must be a finite number >= 0, got {eps!r}")
    top = best(source, objective)
    if top is None:
        return None
    limit = _metric(top, objective) + eps
    ok = [e for e in _candidates(source) if _metric(e, objective) <= limit]
    return min(ok, key=lambda e: (_metric(e, cost), _metric(e, objective)))
