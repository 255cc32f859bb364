"""A Gaussian-process regressor with predictive uncertainty, stored as its training arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.estimators.predictors._base import AccuracyPredictor, from_target

__all__ = ["GPPredictor"]


class GPPredictor(AccuracyPredictor):
    """GP regression (Rasmussen & Williams, 2006) with a scaled RBF kernel plus white noise.

    scikit-learn fits the kernel's amplitude, length scale and noise level by maximising the
    marginal likelihood; the training inputs, the weights ``alpha = K⁻¹ y`` and the Cholesky factor
    of ``K`` are stored, and the posterior mean and standard deviation are computed here.
    :meth:`predict_with_std` returns the predictive standard deviation of a new observation
    (function uncertainty plus the fitted noise) of the log error, carried to accuracy points to
    first order.
    """

    name = "gp"
    has_std = True

    def _fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.sqrt(x.shape[1]), (1e-2, 1e3)) + WhiteKernel(
            0.1, (1e-6, 1e1)
        )
        model = GaussianProcessRegressor(
            kernel, n_restarts_optimizer=2, random_state=int(rng.integers(2**31 - 1))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a bound reached is a valid optimum
            model.fit(x, (y - y_mean) / y_std)
        k = model.kernel_
        return {
            "x_train": x.tolist(),
            "alpha": model.alpha_.reshape(-1).tolist(),
            "chol": model.L_.tolist(),
            "amplitude": float(k.k1.k1.constant_value),
            "length_scale": float(k.k1.k2.length_scale),
            "noise": float(k.k2.noise_level),
            "y_mean": y_mean,
            "y_std": y_std,
        }

    def _predict(self, state: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        xt = np.asarray(state["x_train"], dtype=np.float64)
        sq = (x**2).sum(1)[:, None] + (xt**2).sum(1)[None, :] - 2.0 * x @ xt.T
        k_star = float(state["amplitude"]) * np.exp(
            -0.5 * np.maximum(sq, 0.0) / float(state["length_scale"]) ** 2
        )
        mean = k_star @ np.asarray(state["alpha"], dtype=np.float64)
        v = solve_triangular(np.asarray(state["chol"], dtype=np.float64), k_star.T, lower=True)
        var = float(state["amplitude"]) + float(state["noise"]) - (v**2).sum(0)
        y_std = float(state["y_std"])
        return mean * y_std + float(state["y_mean"]), np.sqrt(np.maximum(var, 0.0)) * y_std

    def predict_with_std(self, genomes, extra=None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy (%) and its predictive standard deviation (accuracy points), each (n,)."""
        state = self._check_fitted()
        if len(genomes) == 0:
            return np.zeros(0), np.zeros(0)
        z, z_std = self._predict(state, self._features(genomes, extra, fitting=False))
        accuracy = from_target(z)
        # First-order propagation through accuracy = 100 - exp(-z): d accuracy / dz = 100 - accuracy.
        return accuracy, z_std * (100.0 - accuracy)
