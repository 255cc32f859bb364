"""Learned accuracy predictors: genome (+ optional proxy scores) -> accuracy, saved as JSON."""

from __future__ import annotations

from typing import Any

from slimforge.estimators.predictors._assisted import AssistedResult, PredictorObjective, evaluate_top_k
from slimforge.estimators.predictors._base import FORMAT, AccuracyPredictor, encode_genomes, proxy_features
from slimforge.registry import Registry

__all__ = [
    "FORMAT",
    "PREDICTORS",
    "AccuracyPredictor",
    "AssistedResult",
    "PredictorObjective",
    "encode_genomes",
    "evaluate_top_k",
    "get_predictor",
    "proxy_features",
]

PREDICTORS: Registry[type[AccuracyPredictor]] = Registry("accuracy predictor")
PREDICTORS.register("gbm", "slimforge.estimators.predictors._gbm:GBMPredictor")
PREDICTORS.register("mlp", "slimforge.estimators.predictors._mlp:MLPPredictor")
PREDICTORS.register("gp", "slimforge.estimators.predictors._gp:GPPredictor")


def get_predictor(name: str, **kwargs: Any) -> AccuracyPredictor:
    """A new (unfitted) predictor registered as ``name`` (``"gbm"``, ``"mlp"``, ``"gp"``)."""
    return PREDICTORS.get(name)(**kwargs)
