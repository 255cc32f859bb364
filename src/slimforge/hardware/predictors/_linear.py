"""Baseline: latency as a straight line in the network's MACs."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.hardware.predictors._base import FeaturePredictor, check_finite

__all__ = ["MacsLinearPredictor"]


class MacsLinearPredictor(FeaturePredictor):
    """Baseline: least-squares line ``latency = a · MACs + b``, MACs counted analytically.

    MACs cover the skeleton and every non-``none`` cell operator (:meth:`NB201Features.cell_macs`).

    Args:
        seed: unused (the fit is deterministic); kept for the common constructor.
        features: the featuriser's settings (:class:`NB201Features` fields).
    """

    name = "macs_linear"
    min_train = 2

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        macs = self.features.cell_macs(genomes) / 1e6  # per million MACs, a well-scaled slope
        design = np.stack([macs, np.ones_like(macs)], axis=1)
        slope, intercept = np.linalg.lstsq(design, latency_ms, rcond=None)[0]
        return {"ms_per_mmac": check_finite(slope), "intercept_ms": check_finite(intercept)}

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return state["ms_per_mmac"] * self.features.cell_macs(genomes) / 1e6 + state["intercept_ms"]
