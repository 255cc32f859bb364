"""CEA: evolution on the primary objective with ε-constraints on the others (the co-design study's baseline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import objective_matrix
from slimforge.search.algorithms._calibrated import CalibratedGA
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import SearchSpace

__all__ = ["CEA"]


class CEA(CalibratedGA):
    """ε-constraint evolutionary algorithm.

    Minimises the first objective; every other objective must stay at or below its
    ``percentile`` (60th) over ``num_calibration`` (1,000) random architectures, which count
    against the budget. A candidate's total violation is its hard-constraint violation plus
    its relative excess over each ε bound; candidates rank by total violation, then by the
    primary objective.
    """

    name = "cea"
    _settings = (*CalibratedGA._settings, "percentile")

    def __init__(self, space: SearchSpace, *, seed: int = 0, percentile: float = 60.0, **kwargs: Any) -> None:
        super().__init__(space, seed=seed, **kwargs)
        if not 0.0 < float(percentile) <= 100.0:
            raise InvalidInputError(f"percentile {percentile!r} must lie in (0, 100]")
        self.percentile = float(percentile)

    def _calibrate(self, F: np.ndarray) -> None:
        cols = self._finite_columns(F)
        self.epsilon = np.array([np.percentile(c, self.percentile) if len(c) else np.inf for c in cols[1:]])

    def _order(self, evaluations: list[Evaluation]) -> np.ndarray:
        F, violation = objective_matrix(evaluations)
        excess = np.maximum(F[:, 1:] - self.epsilon, 0.0) / np.where(
            self.epsilon != 0, np.abs(self.epsilon), 1.0
        )
        total = violation + np.nan_to_num(excess, nan=np.inf).sum(axis=1)
        return np.lexsort((F[:, 0], total))
