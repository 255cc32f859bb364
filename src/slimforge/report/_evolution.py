"""How a search's front grew: the front of its first n evaluations, and hypervolume against n.

Both are recomputed from the evaluations in the order they were made, so they need nothing but
``result.json`` (or the search's store) and work for any algorithm, generational or not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimforge.search import Evaluation, feasible_front
from slimforge.search.indicators import hypervolume, normalise
from slimforge.search.pareto import pareto_mask

__all__ = ["REFERENCE", "HypervolumeCurve", "hypervolume_curve", "prefix_fronts", "snapshot_counts"]

# Fractions of the search whose fronts the evolution figure overlays.
_SNAPSHOTS = (0.1, 0.25, 0.5, 1.0)
# Hypervolume is computed at this many evenly spaced evaluation counts at most.
_CURVE_POINTS = 40
#: the reference point sits 10 % beyond the worst feasible value of each objective (normalised to 1).
REFERENCE = 1.1


@dataclass(frozen=True)
class HypervolumeCurve:
    """Hypervolume of the feasible front of the first ``counts[i]`` evaluations.

    Objectives are min-max normalised over every feasible evaluation of the search and the
    reference point is ``1.1`` in each; the largest possible value is therefore ``1.1 ** m``.
    """

    counts: tuple[int, ...]
    hypervolume: tuple[float, ...]


def snapshot_counts(num_evaluations: int) -> tuple[int, ...]:
    """Distinct evaluation counts (10 %, 25 %, 50 %, 100 % of the search) whose fronts are overlaid."""
    counts = {max(1, math.ceil(num_evaluations * f)) for f in _SNAPSHOTS}
    return tuple(sorted(c for c in counts if c <= num_evaluations))


def prefix_fronts(
    evaluations: Sequence[Evaluation], counts: Sequence[int]
) -> list[tuple[int, tuple[Evaluation, ...]]]:
    """The feasible non-dominated front of the first ``n`` evaluations, for each ``n`` in ``counts``."""
    return [(n, feasible_front(evaluations[:n])) for n in counts]


def hypervolume_curve(evaluations: Sequence[Evaluation]) -> HypervolumeCurve | None:
    """Hypervolume against evaluations made; None when no evaluation is feasible and finite."""
    vectors = np.array([e.vector for e in evaluations], dtype=float)
    ok = np.array([e.feasible for e in evaluations], dtype=bool)
    if vectors.size == 0:
        return None
    ok &= np.all(np.isfinite(vectors), axis=1)
    if not ok.any():
        return None
    lower, upper = vectors[ok].min(axis=0), vectors[ok].max(axis=0)
    ref = np.full(vectors.shape[1], REFERENCE)
    n = len(evaluations)
    counts = sorted({max(1, round(n * (i + 1) / _CURVE_POINTS)) for i in range(_CURVE_POINTS)})
    values = []
    for count in counts:
        prefix = vectors[:count][ok[:count]]
        # Only the prefix's front adds hypervolume; dropping the rest keeps long searches fast.
        front = prefix[pareto_mask(prefix)] if len(prefix) else prefix
        values.append(hypervolume(normalise(front, lower, upper), ref) if len(front) else 0.0)
    return HypervolumeCurve(counts=tuple(counts), hypervolume=tuple(values))
