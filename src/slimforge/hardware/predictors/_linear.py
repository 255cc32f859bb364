"""Baseline: latency as a straight line in the network's MACs."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.hardware.predictors._base import LatencyPredictor, check_finite
from slimforge.hardware.predictors._features import NB201Features

__all__ = ["MacsLinearPredictor"]


class MacsLinearPredictor(LatencyPredictor):
    """Baseline: least-squares line ``latency = a · MACs + b``, MACs counted analytically.

    MACs cover the skeleton and every non-``none`` cell operator (:meth:`NB201Features.cell_macs`).

    Args:
        seed: unused (the fit is deterministic); kept for the common constructor.
        features: the featuriser's settings (:class:`NB201Features` fields).
    """

    name = "macs_linear"
    min_train = 2

    def __init__(self, seed: int = 0, features: dict[str, int] | None = None) -> None:
        super().__init__(seed)
        self.features = NB201Features(**(features or {}))

    def _config(self) -> dict[str, Any]:
        f = self.features
        return {
            "features": {
                k: getattr(f, k) for k in ("channels", "cells_per_stage", "input_size", "num_classes")
            }
        }

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        macs = self.features.cell_macs(genomes) / 1e6  # per million MACs, a well-scaled slope
        design = np.stack([macs, np.ones_like(macs)], axis=1)
        slope, intercept = np.linalg.lstsq(design, latency_ms, rcond=None)[0]
        return {"ms_per_mmac": check_finite(slope), "intercept_ms": check_finite(intercept)}

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return state["ms_per_mmac"] * self.features.cell_macs(genomes) / 1e6 + state["intercept_ms"]
