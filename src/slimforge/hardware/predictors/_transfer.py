"""Transfer to a new device: a source device's latency model plus a few target measurements."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.hardware.predictors._base import LatencyPredictor
from slimforge.hardware.predictors._features import NB201Features
from slimforge.hardware.predictors._ridge import fit_ridge_cv, predict_ridge

__all__ = ["TransferPredictor"]


class TransferPredictor(LatencyPredictor):
    """Few-shot latency model for a target device, built on a fitted source-device predictor.

    The source predictor's estimate enters as an unpenalised input next to the standardised
    :class:`NB201Features`, whose ridge penalty is chosen by cross-validation on the target pairs:
    with few target measurements the model leans on the source device's ranking and corrects
    it where the target runtime costs operators differently (the idea of HELP, Lee et al.,
    NeurIPS 2021, reduced to a linear correction).

    Args:
        source: a fitted predictor of the source device (e.g. ``RidgePredictor`` fitted on the
            source's full table); it is saved inside this predictor's file.
        seed: seeds the cross-validation folds.
    """

    name = "transfer"

    def __init__(self, source: LatencyPredictor, seed: int = 0) -> None:
        super().__init__(seed)
        if not isinstance(source, LatencyPredictor) or not source.is_fitted:
            raise InvalidInputError(f"transfer needs a fitted source LatencyPredictor, got {source!r}")
        if isinstance(source, TransferPredictor):
            raise InvalidInputError(
                "a transfer predictor's source must be a direct predictor, not another transfer"
            )
        self.source = source
        self.features = NB201Features()

    def _config(self) -> dict[str, Any]:
        return {"source": self.source.to_dict()}

    @classmethod
    def _from_config(cls, config: dict[str, Any], seed: int) -> LatencyPredictor:
        return cls(source=LatencyPredictor.from_dict(config["source"], source="transfer source"), seed=seed)

    def _inputs(self, genomes: np.ndarray) -> np.ndarray:
        return np.hstack([self.source.predict(genomes)[:, None], self.features.transform(genomes)])

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        x = self._inputs(genomes)
        penalised = np.r_[False, np.ones(x.shape[1] - 1, dtype=bool)]
        return fit_ridge_cv(x, latency_ms, rng, penalised=penalised)

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return predict_ridge(state, self._inputs(genomes))
