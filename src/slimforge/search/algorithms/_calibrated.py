"""Scalarising GAs that first calibrate on random samples (the study's WSEA and CEA baselines)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.search.algorithms._base import check_count, objective_matrix
from slimforge.search.algorithms._ga import GenerationalGA
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["CalibratedGA"]


class CalibratedGA(GenerationalGA):
    """A GA whose first ask is ``num_calibration`` distinct random genomes.

    Their objective values set the scalarisation (subclasses' :meth:`_calibrate`); the best
    ``pop_size`` of them start the GA. The calibration samples are evaluations like any other:
    they count against the budget (with a tabular or supernet oracle they cost what any other
    candidate costs), so with a budget of at most ``num_calibration`` these baselines are
    random search.
    """

    _settings = (*GenerationalGA._settings, "num_calibration")

    def __init__(self, space: SearchSpace, *, seed: int = 0, num_calibration: int = 1000, **ga: Any) -> None:
        super().__init__(space, seed=seed, **ga)
        check_count("num_calibration", num_calibration, space, minimum=2, default=1000)
        self.num_calibration = int(num_calibration)

    def run_notes(self, *, budget: int) -> list[str]:
        if budget > self.num_calibration:
            return []
        note = (
            f"{self.name}: the study's calibration sample of {self.num_calibration:,} random architectures "
            f"consumes the whole budget of {budget:,}, so this run is random search; give a budget above "
            f"{self.num_calibration:,} or set num_calibration lower"
        )
        return [note]

    def _initial(self) -> list[Genome]:
        return self._sample_new(self.num_calibration, set())

    def _tell_initial(self, evaluations: list[Evaluation]) -> None:
        F, _ = objective_matrix(evaluations)
        self._calibrate(F)
        super()._tell_initial(evaluations)

    def _calibrate(self, F: np.ndarray) -> None:
        """Fix the scalarisation from the calibration samples' objective values."""

    @staticmethod
    def _finite_columns(F: np.ndarray) -> list[np.ndarray]:
        return [col[np.isfinite(col)] for col in F.T]
