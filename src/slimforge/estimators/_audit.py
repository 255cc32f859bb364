"""The estimator audit: how well each accuracy estimator ranks a calibration set, and which to trust.

A search is only as good as its accuracy signal, so a run measures its own: a small seeded set of
architectures is trained standalone (or looked up in a ground-truth table), every available
estimator scores the same architectures, and each estimator's rank correlation with the trained
accuracy is reported with a bootstrap interval (architectures resampled with replacement). A
learned blend of the estimators' scores (ridge regression on standardised scores) is judged by
leave-one-out predictions, so it is never scored on the architectures it was fitted to. The
estimator with the highest Kendall τ is chosen, but an incumbent (the run's supernet) is replaced
only when the other ranks better beyond the noise; a chosen τ below the threshold is a warning.

>>> scores = {"supernet": [41.0, 55.2, 38.9, 60.1], "num_params": [1e5, 3e5, 8e4, 2e5]}
>>> audit = audit_estimators(scores, truth=[70.1, 80.3, 65.0, 79.9], seed=0)  # doctest: +SKIP
>>> audit.chosen, audit.reason                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = [
    "AUDIT_THRESHOLD",
    "BLEND",
    "Blend",
    "EstimatorAudit",
    "EstimatorScore",
    "audit_estimators",
    "bootstrap_correlation",
    "fit_blend",
    "kendall_tau",
]

#: a best Kendall τ below this makes the run warn that its accuracy signal is weak.
AUDIT_THRESHOLD = 0.3
#: the name of the learned blend among the audited estimators.
BLEND = "blend"


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b of ``x`` against ``y`` (NaN when either side is constant or fewer than 3 pairs)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return math.nan
    return float(kendalltau(a[keep], b[keep])[0])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(spearmanr(x[keep], y[keep])[0])


@dataclass(frozen=True)
class EstimatorScore(JsonRecord):
    """One estimator's rank agreement with the trained accuracy, with 95 % bootstrap intervals.

    ``how`` says what the scores are (e.g. "leave-one-out predictions" for the blend).
    """

    name: str
    kendall_tau: float | None
    spearman_rho: float | None
    tau_low: float | None
    tau_high: float | None
    rho_low: float | None
    rho_high: float | None
    num_archs: int
    scores: tuple[float, ...]
    how: str = ""


def _none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def bootstrap_correlation(
    name: str,
    scores: Sequence[float],
    truth: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
    how: str = "",
) -> EstimatorScore:
    """τ and ρ of ``scores`` against ``truth``, each with a percentile bootstrap 95 % interval."""
    s, t = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    if s.shape != t.shape or s.ndim != 1:
        raise InvalidInputError(f"estimator {name}: {s.shape} scores for {t.shape} accuracies; give one each")
    tau, rho = kendall_tau(s, t), _spearman(s, t)
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    n = len(s)
    for _ in range(resamples if n >= 3 else 0):
        idx = rng.integers(0, n, n)
        taus.append(kendall_tau(s[idx], t[idx]))
        rhos.append(_spearman(s[idx], t[idx]))
    taus_f = [v for v in taus if math.isfinite(v)]
    rhos_f = [v for v in rhos if math.isfinite(v)]
    tl, th = (np.percentile(taus_f, [2.5, 97.5]) if taus_f else (math.nan, math.nan))
    rl, rh = (np.percentile(rhos_f, [2.5, 97.5]) if rhos_f else (math.nan, math.nan))
    return EstimatorScore(name, _none(tau), _none(rho), _none(tl), _none(th), _none(rl), _none(rh), n,
                          tuple(float(v) for v in s), how)


@dataclass(frozen=True)
class Blend(JsonRecord):
    """Accuracy predicted as ``intercept + sum(weight * (score - mean) / std)`` over named estimators."""

    members: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    alpha: float

    def predict(self, features: Mapping[str, Sequence[float]]) -> np.ndarray:
        """Predicted accuracy (%) of each architecture from its estimators' scores."""
        out = np.full(len(next(iter(features.values()))), self.intercept, dtype=float)
        for name, mean, std, weight in zip(self.members, self.means, self.stds, self.weights):
            out += weight * (np.asarray(features[name], dtype=float) - mean) / std
        return out


def fit_blend(features: Mapping[str, Sequence[float]], truth: Sequence[float], *, alpha: float = 1.0) -> Blend:
    """Ridge regression of ``truth`` on the standardised ``features`` (one column per estimator)."""
    names = list(features)
    X = np.column_stack([np.asarray(features[n], dtype=float) for n in names])
    y = np.asarray(truth, dtype=float)
    means, stds = X.mean(axis=0), X.std(axis=0)
    stds[stds == 0] = 1.0
    Z = (X - means) / stds
    weights = np.linalg.solve(Z.T @ Z + alpha * np.eye(len(names)), Z.T @ (y - y.mean()))
    return Blend(tuple(names), tuple(map(float, means)), tuple(map(float, stds)), tuple(map(float, weights)),
                 float(y.mean()), float(alpha))


def _leave_one_out(features: Mapping[str, Sequence[float]], truth: np.ndarray) -> np.ndarray:
    out = np.empty(len(truth))
    for i in range(len(truth)):
        keep = np.arange(len(truth)) != i
        blend = fit_blend({k: np.asarray(v, dtype=float)[keep] for k, v in features.items()}, truth[keep])
        out[i] = blend.predict({k: [np.asarray(v, dtype=float)[i]] for k, v in features.items()})[0]
    return out


@dataclass(frozen=True)
class EstimatorAudit(JsonRecord):
    """Every audited estimator's correlation, the choice and why, and the blend the choice may use."""

    archs: tuple[str, ...]
    truth_pct: tuple[float, ...]
    truth_source: str
    estimators: tuple[EstimatorScore, ...]
    chosen: str
    reason: str
    threshold: float
    warning: str | None
    blend: Blend | None = None

    def score(self, name: str) -> EstimatorScore:
        """The audited estimator called ``name``."""
        return next(e for e in self.estimators if e.name == name)


def audit_estimators(
    scores: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    *,
    archs: Sequence[str] = (),
    truth_source: str = "trained standalone",
    blend_of: Sequence[str] | None = None,
    threshold: float = AUDIT_THRESHOLD,
    prefer: str | None = None,
    default: str | None = None,
    seed: int = 0,
) -> EstimatorAudit:
    """Correlate every estimator's ``scores`` with ``truth``, add a leave-one-out blend, choose one.

    Args:
        scores: estimator name -> one score per architecture (higher = more accurate).
        truth: the architectures' trained (or tabulated) accuracy.
        archs: the architectures' strings, for the record.
        truth_source: where ``truth`` comes from, for the record.
        blend_of: the estimators the blend combines (default: all; none when fewer than two or
            fewer than 5 architectures).
        threshold: a best Kendall τ below this gives a warning.
        prefer: choose this estimator instead of the best (the user's choice); the record says so.
        default: the incumbent (the run's supernet): another estimator replaces it only when the
            lower end of its 95% interval lies above the incumbent's τ, so noise on a small
            calibration set never swaps a cheap estimate for a costly one.
        seed: seeds the bootstrap.
    """
    truth_a = np.asarray(truth, dtype=float)
    if len(truth_a) < 3:
        raise InvalidInputError(f"an estimator audit needs at least 3 architectures, got {len(truth_a)}")
    if not scores:
        raise InvalidInputError("an estimator audit needs at least one estimator's scores")
    rows = [bootstrap_correlation(n, s, truth_a, seed=seed) for n, s in scores.items()]
    members = list(blend_of if blend_of is not None else scores)
    blend = None
    if len(members) >= 2 and len(truth_a) >= 5:
        features = {m: scores[m] for m in members}
        loo = _leave_one_out(features, truth_a)
        rows.append(bootstrap_correlation(BLEND, loo, truth_a, seed=seed,
                                          how=f"leave-one-out predictions of a ridge blend of {', '.join(members)}"))
        blend = fit_blend(features, truth_a)
    ranked = sorted(rows, key=lambda r: -math.inf if r.kendall_tau is None else r.kendall_tau, reverse=True)
    best = ranked[0]
    listed = ", ".join(f"{r.name} {_fmt(r.kendall_tau)} [{_fmt(r.tau_low)}, {_fmt(r.tau_high)}]" for r in ranked)
    names = {r.name for r in rows}
    if prefer is not None:
        if prefer not in names:
            raise InvalidInputError(f"estimator {prefer!r} was not audited (audited: {', '.join(r.name for r in rows)})")
        chosen = prefer
        reason = f"{prefer} as configured (Kendall τ on {len(truth_a)} calibration architectures: {listed})"
    elif default is not None and default in names and best.name != default:
        incumbent = next(r for r in rows if r.name == default)
        if incumbent.kendall_tau is None or (best.tau_low is not None and best.tau_low > incumbent.kendall_tau):
            chosen = best.name
            reason = (f"{best.name} ranks the {len(truth_a)} calibration architectures better than {default}, beyond "
                      f"the noise (its 95% interval lies above {default}'s τ): {listed}")
        else:
            chosen = default
            reason = (f"kept {default}: no estimator ranks the {len(truth_a)} calibration architectures better "
                      f"beyond the noise (a switch needs the other's 95% interval above {default}'s τ): {listed}")
    else:
        chosen = best.name
        reason = f"the highest Kendall τ on {len(truth_a)} calibration architectures: {listed}"
    top = next(r for r in rows if r.name == chosen).kendall_tau
    warning = None
    if top is None or top < threshold:
        warning = (f"the accuracy estimator ranks poorly: {chosen} has Kendall τ {_fmt(top)} on the calibration "
                   f"set, below {threshold:g}; the search's accuracy objective is unreliable (train the supernet "
                   "longer, or enlarge accuracy.calibration to learn a better blend)")
    return EstimatorAudit(tuple(archs), tuple(map(float, truth_a)), truth_source, tuple(rows), chosen, reason,
                          float(threshold), warning, blend)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"
