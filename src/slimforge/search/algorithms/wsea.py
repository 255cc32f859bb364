"""WSEA: evolution on the weighted sum of normalised objectives (the co-design study's baseline)."""

from __future__ import annotations

import numpy as np

from slimforge.search.algorithms._base import objective_matrix
from slimforge.search.algorithms._calibrated import CalibratedGA
from slimforge.search.evaluation import Evaluation

__all__ = ["WSEA"]


class WSEA(CalibratedGA):
    """Weighted-sum evolutionary algorithm.

    Fitness is the mean over objectives of ``(f - mean) / std``, with mean and std estimated
    from ``num_calibration`` (1,000) random architectures, which count against the budget.
    Infeasible candidates rank after feasible ones, by violation. The GA is the study's
    (see :class:`GenerationalGA`); the front reported is the non-dominated set of everything
    evaluated, as for every algorithm.
    """

    name = "wsea"

    def _calibrate(self, F: np.ndarray) -> None:
        cols = self._finite_columns(F)
        self.mean = np.array([c.mean() if len(c) else 0.0 for c in cols])
        std = np.array([c.std() if len(c) else 1.0 for c in cols])
        self.std = np.where(std > 0, std, 1.0)

    def _order(self, evaluations: list[Evaluation]) -> np.ndarray:
        F, violation = objective_matrix(evaluations)
        with np.errstate(invalid="ignore"):
            fitness = ((F - self.mean) / self.std).mean(axis=1)
        fitness[np.isnan(fitness)] = np.inf
        return np.lexsort((fitness, violation))
