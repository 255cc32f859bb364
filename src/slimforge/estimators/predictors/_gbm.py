"""Gradient-boosted regression trees, fitted by scikit-learn and stored as plain arrays.

After the fit every tree is copied into arrays (children, split feature, threshold, leaf value), and
prediction walks those arrays here, so a saved predictor is JSON and needs neither pickle nor
scikit-learn's internal object layout to be read back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.estimators.predictors._base import AccuracyPredictor

__all__ = ["GBMPredictor", "walk_trees"]


def walk_trees(trees: list[dict[str, list]], x: np.ndarray) -> np.ndarray:
    """Sum over ``trees`` of each row's leaf value (a tree: ``left``, ``right``, ``feature``, ``threshold``, ``value``)."""
    # scikit-learn splits float32 copies of the features; compare the same way to agree exactly.
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    total = np.zeros(len(x))
    rows = np.arange(len(x))
    for tree in trees:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"], dtype=np.float64)
        node = np.zeros(len(x), dtype=np.int64)
        active = left[node] >= 0
        while active.any():
            r, n = rows[active], node[active]
            node[r] = np.where(x[r, feature[n]] <= threshold[n], left[n], right[n])
            active = left[node] >= 0
        total += np.asarray(tree["value"], dtype=np.float64)[node]
    return total


class GBMPredictor(AccuracyPredictor):
    """Gradient boosting (Friedman, 2001) with squared loss, as in the predictor study of White et al. (2021).

    Args:
        n_estimators: boosting rounds.
        max_depth: depth of each tree.
        learning_rate: shrinkage.
        subsample: share of the training set each tree sees (seeded).
        (space, extra_features, canonical, seed: see :class:`AccuracyPredictor`.)
    """

    name = "gbm"

    def __init__(
        self,
        space="nb201",
        extra_features=(),
        canonical=True,
        seed=0,
        *,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
    ) -> None:
        super().__init__(space, extra_features, canonical, seed)
        if not (
            isinstance(n_estimators, int)
            and n_estimators >= 1
            and isinstance(max_depth, int)
            and max_depth >= 1
        ):
            raise InvalidInputError(
                f"n_estimators and max_depth must be positive ints, got {n_estimators!r}, {max_depth!r}"
            )
        if not (0 < learning_rate <= 1 and 0 < subsample <= 1):
            raise InvalidInputError(
                f"learning_rate and subsample must lie in (0, 1], got {learning_rate!r}, {subsample!r}"
            )
        self.n_estimators, self.max_depth = n_estimators, max_depth
        self.learning_rate, self.subsample = float(learning_rate), float(subsample)

    def _config(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
        }

    def _fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        from sklearn.ensemble import GradientBoostingRegressor

        model = GradientBoostingRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            random_state=int(rng.integers(2**31 - 1)),
        ).fit(x, y)
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "left": t.children_left.tolist(),
                    "right": t.children_right.tolist(),
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "value": t.value[:, 0, 0].tolist(),
                }
            )
        state = {"init": 0.0, "learning_rate": self.learning_rate, "trees": trees}
        # The constant the ensemble starts from (the training mean) is recovered so that the exported
        # trees reproduce scikit-learn's own predictions.
        state["init"] = float(np.mean(model.predict(x) - self.learning_rate * walk_trees(trees, x)))
        return state

    def _predict(self, state: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, None]:
        return float(state["init"]) + float(state["learning_rate"]) * walk_trees(state["trees"], x), None
