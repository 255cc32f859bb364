"""``calibrated_accuracy``: the accuracy estimate a run's estimator audit chose, on the accuracy scale.

The audit (:mod:`slimforge.estimators._audit`) correlates several estimators with the trained
accuracy of a calibration set and may choose one other than the supernet, or a blend of them. This
evaluator gives the search that choice as ``error``/``accuracy``: each member estimator's feature
(supernet accuracy %, zero-cost proxy score, log10 of the parameter count) goes through the
audit's ridge blend, fitted on the calibration set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import BatchEvaluator, Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["FEATURES", "CalibratedAccuracyEvaluator", "feature_value"]

#: audited estimator -> (the metric of its evaluator that it reads, how that metric becomes the feature).
FEATURES = {"supernet": "accuracy", "zero_cost": "proxy_score", "num_params": "num_params"}


def feature_value(name: str, metrics: Mapping[str, float]) -> float:
    """The audited estimator ``name``'s feature from its evaluator's metrics."""
    value = float(metrics[FEATURES[name]])
    if name == "num_params":
        return math.log10(max(value, 1.0))
    return value


class CalibratedAccuracyEvaluator(BatchEvaluator):
    """``error`` and ``accuracy`` (%) from the blend ``accuracy = intercept + sum(w * (feature - mean) / std)``.

    Args:
        space: the search space.
        members: estimator name (``supernet``, ``zero_cost``, ``num_params``) -> its evaluator.
        blend: the fitted blend as :meth:`slimforge.estimators.Blend.to_dict` gives it.
    """

    def __init__(self, space: SearchSpace, members: Mapping[str, Evaluator], blend: Mapping[str, Any]) -> None:
        super().__init__(space, ("error", "accuracy"))
        unknown = [m for m in members if m not in FEATURES]
        if unknown or set(blend["members"]) - set(members):
            raise InvalidInputError(
                f"calibrated accuracy: members {sorted(members)} do not match the blend's {list(blend['members'])}"
            )
        self.members = dict(members)
        self.blend = dict(blend)

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        b = self.blend
        features = {name: [feature_value(name, m) for m in self.members[name].evaluate_many(genomes)]
                    for name in b["members"]}
        out = []
        for i in range(len(genomes)):
            acc = b["intercept"] + sum(
                w * (features[n][i] - mean) / std for n, mean, std, w in zip(b["members"], b["means"], b["stds"], b["weights"])
            )
            out.append({"error": 100.0 - acc, "accuracy": acc})
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "members": {k: v.describe() for k, v in self.members.items()},
                "blend": self.blend}
