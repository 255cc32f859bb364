"""Accuracy estimates without training: zero-cost proxies, their ensembles, learned predictors.

>>> from slimforge.estimators import get_proxy, score_model
>>> get_proxy("naswot").score(model, images)            # one proxy, one minibatch
>>> score_model(model, (images, labels), "synflow,snip")  # several; inapplicable ones are skipped

Proxies are pure functions of (model, one minibatch): they score a private deep copy, so the
caller's parameters, buffers, gradients, ``requires_grad`` flags and mode are left as they were.
Ensembles combine proxies by rank averaging or majority vote (:func:`ensemble`); the zero-cost
estimator of NAS-Bench-201 networks is :class:`ZeroCostEstimator`. Learned predictors map genomes
(and optionally proxy scores) to accuracy and plug into search as objectives
(:class:`PredictorObjective`, :func:`evaluate_top_k`); :func:`evaluate_accuracy_predictor` measures
one on a ground-truth table (train on a seeded few rows, rank correlation on the others).
:func:`audit_estimators` is the estimator audit a run does on its calibration set: each estimator's
Kendall τ / Spearman ρ with bootstrap intervals, a leave-one-out blend, and the choice.
"""

from __future__ import annotations

from slimforge.estimators._audit import (
    AUDIT_THRESHOLD,
    BLEND,
    Blend,
    EstimatorAudit,
    EstimatorScore,
    audit_estimators,
    bootstrap_correlation,
    fit_blend,
    kendall_tau,
)
from slimforge.estimators._estimator import DEFAULT_ENSEMBLE, ZeroCostEstimator
from slimforge.estimators._experiment import (
    EnsembleSpec,
    ProxyEvaluation,
    ProxyReport,
    evaluate_proxies,
    parse_ensemble,
)
from slimforge.estimators._predictor_experiment import (
    PredictorReport,
    PredictorRun,
    evaluate_accuracy_predictor,
)
from slimforge.estimators._ranking import (
    ENSEMBLE_RULES,
    Correlation,
    correlate,
    ensemble,
    normalized_ranks,
    rank_average,
    vote,
)
from slimforge.estimators._scoring import (
    ArchScores,
    ProxyResult,
    ProxySkippedWarning,
    build_network,
    score_architectures,
    score_model,
)
from slimforge.estimators._table import AccuracyTable, read_accuracy_table
from slimforge.estimators.predictors import (
    PREDICTORS,
    AccuracyPredictor,
    AssistedResult,
    PredictorObjective,
    encode_genomes,
    evaluate_top_k,
    get_predictor,
    proxy_features,
)
from slimforge.estimators.proxies import PROXIES, Proxy, ProxyNotApplicableError, get_proxy, list_proxies

__all__ = [
    "AUDIT_THRESHOLD",
    "BLEND",
    "DEFAULT_ENSEMBLE",
    "ENSEMBLE_RULES",
    "PREDICTORS",
    "PROXIES",
    "AccuracyPredictor",
    "AccuracyTable",
    "ArchScores",
    "AssistedResult",
    "Blend",
    "Correlation",
    "EnsembleSpec",
    "EstimatorAudit",
    "EstimatorScore",
    "PredictorObjective",
    "PredictorReport",
    "PredictorRun",
    "Proxy",
    "ProxyEvaluation",
    "ProxyNotApplicableError",
    "ProxyReport",
    "ProxyResult",
    "ProxySkippedWarning",
    "ZeroCostEstimator",
    "audit_estimators",
    "bootstrap_correlation",
    "build_network",
    "correlate",
    "encode_genomes",
    "ensemble",
    "evaluate_accuracy_predictor",
    "evaluate_proxies",
    "evaluate_top_k",
    "fit_blend",
    "get_predictor",
    "get_proxy",
    "kendall_tau",
    "list_proxies",
    "normalized_ranks",
    "parse_ensemble",
    "proxy_features",
    "rank_average",
    "read_accuracy_table",
    "score_architectures",
    "score_model",
    "vote",
]
