"""``predictor``: a saved accuracy predictor as an evaluator (``predicted_error``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import BatchEvaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["PredictorEvaluator"]


class PredictorEvaluator(BatchEvaluator):
    """``predicted_error`` (100 - predicted accuracy %) and ``predicted_accuracy`` from a saved predictor.

    A predictor with uncertainty (``gp``) also gives ``predicted_error_std``. The predictor is read
    once; a fitted predictor is arrays and numbers, so the evaluator pickles as plain data.

    Args:
        space: the search space; the predictor must have been fitted on it.
        path: a JSON file written by :meth:`slimforge.estimators.AccuracyPredictor.save`
            (``slimforge predictor fit ... --out FILE``); it must take genomes only (no proxy features).
    """

    def __init__(self, space: SearchSpace, path: str | os.PathLike) -> None:
        from slimforge.estimators import AccuracyPredictor, PredictorObjective

        predictor = AccuracyPredictor.load(path)
        if predictor.space.name != space.name or list(predictor.space.num_choices) != list(space.num_choices):
            raise InvalidInputError(
                f"predictor {path} was fitted on {predictor.space!r}, not on {space!r}; "
                f"fit one on the searched space"
            )
        self.path = Path(path)
        self.objective = PredictorObjective(space, predictor)
        metrics = ["predicted_error", "predicted_accuracy"]
        if predictor.has_std:
            metrics.append("predicted_error_std")
        super().__init__(space, tuple(metrics))

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        out = []
        for values in self.objective.evaluate_many(genomes):
            out.append({**values, "predicted_accuracy": 100.0 - values["predicted_error"]})
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **self.objective.describe(),
            **super().describe(),
            "path": os.path.abspath(self.path),
        }
