"""Ridge regression on the analytic NB201 features, its penalty chosen by cross-validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.hardware.predictors._base import FeaturePredictor, check_finite, finite_list

__all__ = ["RidgePredictor", "fit_ridge_cv", "relative_error"]

#: penalties tried by cross-validation, on standardised features.
ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 3, 15))
_FOLDS = 5


def relative_error(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean |pred - y| / y, with y floored at 20% of its median so near-zero latencies cannot dominate."""
    floor = np.maximum(y, 0.2 * np.median(y))
    return float(np.mean(np.abs(pred - y) / floor))


def _gram(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AᵀA, Aᵀy) of the design A = [1, z]: every penalty is then solved in p × p."""
    design = np.hstack([np.ones((len(z), 1)), z])
    return design.T @ design, design.T @ y


def _solve(
    gram: tuple[np.ndarray, np.ndarray], alpha: float, penalised: np.ndarray
) -> tuple[np.ndarray, float]:
    """Ridge with an unpenalised intercept; columns with ``penalised`` False are not shrunk either."""
    ata, aty = gram
    penalty = alpha * np.diag(np.r_[0.0, penalised.astype(np.float64)])
    # lstsq rather than solve: with collinear features and no penalty the system is singular.
    sol = np.linalg.lstsq(ata + penalty, aty, rcond=None)[0]
    return sol[1:], float(sol[0])


def fit_ridge_cv(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, penalised: np.ndarray | None = None
) -> dict[str, Any]:
    """Standardise ``x``, choose the penalty by k-fold CV on (x, y) only, refit on everything.

    Returns the state: ``mean``, ``scale``, ``coef``, ``intercept`` (on standardised columns)
    and the chosen ``alpha``.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column: leave it at zero after centring
    z = (x - mean) / scale
    pen = np.ones(x.shape[1], dtype=bool) if penalised is None else np.asarray(penalised, dtype=bool)
    n = len(y)
    alpha = 1.0
    if n >= _FOLDS:
        folds = np.array_split(rng.permutation(n), _FOLDS)
        best = np.inf
        grams = [_gram(z[keep], y[keep]) for keep in (np.setdiff1d(np.arange(n), held) for held in folds)]
        for a in ALPHAS:
            pred = np.empty(n)
            for held, gram in zip(folds, grams):
                coef, icpt = _solve(gram, a, pen)
                pred[held] = z[held] @ coef + icpt
            err = relative_error(pred, y)
            if err < best - 1e-12:  # ties keep the smaller penalty tried first
                best, alpha = err, a
    coef, icpt = _solve(_gram(z, y), alpha, pen)
    return {
        "mean": finite_list(mean),
        "scale": finite_list(scale),
        "coef": finite_list(coef),
        "intercept": check_finite(icpt),
        "alpha": alpha,
    }


def predict_ridge(state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Predictions of a :func:`fit_ridge_cv` state."""
    z = (x - np.asarray(state["mean"])) / np.asarray(state["scale"])
    return z @ np.asarray(state["coef"]) + float(state["intercept"])


class RidgePredictor(FeaturePredictor):
    """Linear latency model on :class:`NB201Features` (operator counts per view, MACs, bytes, depth).

    Latency on a CPU runtime is close to a sum of per-operator costs (the premise of layer-wise
    latency tables, e.g. Cai et al., "ProxylessNAS", ICLR 2019), so a linear model on what the
    network executes needs few measurements; the ridge penalty is chosen by 5-fold
    cross-validation on the training pairs only.

    Args:
        seed: seeds the cross-validation folds.
        features: the featuriser's settings (:class:`NB201Features` fields).
    """

    name = "ridge"

    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        return fit_ridge_cv(self.features.transform(genomes), latency_ms, rng)

    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        return predict_ridge(state, self.features.transform(genomes))
