"""Gradient-boosted regression trees (scikit-learn), stored as plain arrays and evaluated here.

scikit-learn fits the ensemble; its trees are then copied into JSON-compatible arrays (children,
split feature, threshold, leaf value) and predicted by :func:`predict_trees`, so a saved model
needs neither pickle nor scikit-learn's object layout to be read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.hardware.predictors._base import FeaturePredictor, LatencyPredictor, check_finite, finite_list
from slimforge.hardware.predictors._features import onehot
from slimforge.hardware.predictors._ridge import relative_error

__all__ = ["BoostingPredictor", "OneHotBoostingPredictor", "fit_boosting", "predict_trees"]

#: hyper-parameters tried by cross-validation in :class:`BoostingPredictor`.
GRID: tuple[dict[str, Any], ...] = tuple(
    {"n_estimators": n, "max_depth": d, "learning_rate": lr}
    for n in (100, 300)
    for d in (2, 3)
    for lr in (0.05, 0.1)
)
_FOLDS = 5


def _export(model: Any, x: np.ndarray) -> dict[str, Any]:
    """Copy a fitted GradientBoostingRegressor into arrays; the constant start is recovered exactly."""
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append(
            {
                "left": [int(v) for v in t.children_left],
                "right": [int(v) for v in t.children_right],
                "feature": [int(v) for v in t.feature],
                "threshold": finite_list(t.threshold),
                "value": finite_list(t.value[:, 0, 0]),
            }
        )
    state = {"init": 0.0, "learning_rate": float(model.learning_rate), "trees": trees}
    # The initial estimate (the training mean for squared error) is whatever makes our sum agree
    # with scikit-learn's own prediction.
    state["init"] = check_finite(float(np.mean(model.predict(x) - predict_trees(state, x))))
    return state


def predict_trees(state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Sum of the exported trees: init + learning_rate × Σ tree(x)."""
    # scikit-learn compares float32 features with float64 thresholds; do the same.
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    total = np.zeros(len(x))
    rows = np.arange(len(x))
    for tree in state["trees"]:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        node = np.zeros(len(x), dtype=np.int64)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            r, n = rows[inner], node[inner]
            node[r] = np.where(x[r, feature[n]] <= threshold[n], left[n], right[n])
        total += np.asarray(tree["value"])[node]
    return float(state["init"]) + float(state["learning_rate"]) * total


def fit_boosting(x: np.ndarray, y: np.ndarray, seed: int, **params: Any) -> dict[str, Any]:
    """Fit scikit-learn's GradientBoostingRegressor with ``params`` and export it."""
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(random_state=seed, **params).fit(x, y)
    return _export(model, x)


class BoostingPredictor(FeaturePredictor):
    """Gradient boosting (Friedman, 2001) on :class:`NB201Features`, hyper-parameters by 5-fold CV.

    Args:
        seed: seeds the folds and the trees.
        features: the featuriser's settings (:class:`NB201Features` fields).
        grid: GradientBoostingRegressor settings tried by cross-validation (default :data:`GRID`).
    """

    name = "gbm"
    min_train = 5

    def __init__(
        self,
        seed: int = 0,
        features: dict[str, int] | None = None,
        grid: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(seed, features)
        self.grid = tuple(dict(p) for p in (GRID if grid is None else grid))
        if not self.grid:
            raise InvalidInputError("gbm grid must hold at least one setting")

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "grid": [dict(p) for p in self.grid]}

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        x = self.features.transform(genomes)
        folds = np.array_split(rng.permutation(len(x)), _FOLDS)
        best, best_params = np.inf, self.grid[0]
        for params in self.grid:
            pred = np.empty(len(x))
            for held in folds:
                keep = np.setdiff1d(np.arange(len(x)), held)
                pred[held] = predict_trees(
                    fit_boosting(x[keep], latency_ms[keep], self.seed, **params), x[held]
                )
            err = relative_error(pred, latency_ms)
            if err < best - 1e-12:
                best, best_params = err, params
        state = fit_boosting(x, latency_ms, self.seed, **best_params)
        state["params"] = dict(best_params)
        return state

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return predict_trees(state, self.features.transform(genomes))


class OneHotBoostingPredictor(LatencyPredictor):
    """Baseline: scikit-learn's GradientBoostingRegressor with its defaults on the raw one-hot genome.

    30 binary columns (6 genes × 5 operations), no knowledge of what the network computes.
    """

    name = "onehot_gbm"

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        return fit_boosting(onehot(genomes), latency_ms, self.seed)

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return predict_trees(state, onehot(genomes))
