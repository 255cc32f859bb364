"""Learned latency predictors for NAS-Bench-201 networks, fitted on a few device measurements.

Every predictor lives in :data:`PREDICTORS`; ``create_predictor("ridge", seed=0).fit(genomes,
latency_ms)`` then ``.predict(genomes)``, ``.save(path)`` and :func:`load_predictor` (JSON, no
pickle). :func:`evaluate_on_table` trains on a seeded sample of a device table and scores the
rest, next to the baselines; ``slimforge predictor fit`` is its command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimforge.hardware.predictors._base import LatencyPredictor
from slimforge.hardware.predictors._boosting import BoostingPredictor, OneHotBoostingPredictor
from slimforge.hardware.predictors._evaluate import (
    NETWORKS,
    PredictorEvaluation,
    PredictorScores,
    evaluate_on_table,
    sample_rows,
    score_predictions,
)
from slimforge.hardware.predictors._features import NB201Features, isomorphism_key, onehot
from slimforge.hardware.predictors._linear import MacsLinearPredictor
from slimforge.hardware.predictors._ridge import RidgePredictor
from slimforge.hardware.predictors._transfer import TransferPredictor
from slimforge.registry import Registry

__all__ = [
    "NETWORKS",
    "PREDICTORS",
    "BoostingPredictor",
    "LatencyPredictor",
    "MacsLinearPredictor",
    "NB201Features",
    "OneHotBoostingPredictor",
    "PredictorEvaluation",
    "PredictorScores",
    "RidgePredictor",
    "TransferPredictor",
    "create_predictor",
    "evaluate_on_table",
    "isomorphism_key",
    "load_predictor",
    "onehot",
    "sample_rows",
    "score_predictions",
]

#: latency predictors by name; ``transfer`` needs a fitted source predictor as argument.
PREDICTORS: Registry[type[LatencyPredictor]] = Registry("latency predictor")
PREDICTORS.register(RidgePredictor.name, RidgePredictor)
PREDICTORS.register(BoostingPredictor.name, BoostingPredictor)
PREDICTORS.register(MacsLinearPredictor.name, MacsLinearPredictor)
PREDICTORS.register(OneHotBoostingPredictor.name, OneHotBoostingPredictor)
PREDICTORS.register(TransferPredictor.name, TransferPredictor)


def create_predictor(name: str, **kwargs: Any) -> LatencyPredictor:
    """A new, unfitted predictor registered as ``name`` (kwargs go to its constructor)."""
    return PREDICTORS.get(name)(**kwargs)


def load_predictor(path: str | Path, runtime: str | None = None) -> LatencyPredictor:
    """Read a predictor saved with :meth:`LatencyPredictor.save`, whatever its model.

    With ``runtime``, a predictor fitted on another runtime's latencies is refused (one line).
    """
    return LatencyPredictor.load(path, runtime=runtime)
