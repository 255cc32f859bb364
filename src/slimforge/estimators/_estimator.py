"""A label-free estimator: one fixed ensemble of zero-cost proxies that ranks a set of architectures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slimforge.estimators._experiment import EnsembleSpec, parse_ensemble
from slimforge.estimators._ranking import ensemble
from slimforge.estimators._scoring import ArchScores, score_architectures
from slimforge.estimators.proxies import Batch
from slimforge.spaces import Genome, SearchSpace

__all__ = ["DEFAULT_ENSEMBLE", "ZeroCostEstimator"]

#: the rule fixed on tuning samples (seeds 100 and 101 of NAS-Bench-201, never the evaluation seed 0):
#: MeCo carries most of the signal; the Jacobian covariance and the parameter count correct it where
#: it errs (they rank differently from it and from each other), so each gets half its weight.
DEFAULT_ENSEMBLE = "rank_average:meco=2+jacob_cov+num_params"


class ZeroCostEstimator:
    """Ranks architectures without training and without any accuracy label.

    Each candidate's canonical network is built (initial weights from ``seed``) and scored on one
    minibatch by the ensemble's proxies; the proxies' ranks within the candidate set are combined by
    the ensemble rule. Scores are therefore relative to the set scored together: use them to order
    candidates (e.g. as ``predict`` in :func:`slimforge.estimators.evaluate_top_k`), not as
    absolute accuracies.

    Args:
        space: the search space.
        batch: the minibatch (images, or ``(images, labels)`` when a member proxy needs labels).
        ensemble: an ensemble spec (see :func:`slimforge.estimators.parse_ensemble`), by default
            :data:`DEFAULT_ENSEMBLE`.
        seed: seeds the initial weights and the proxies.
        nonfinite: ``"order"`` (default) ranks a ``-inf`` score (a network whose output does not depend on its
            input) below every other; ``"drop"`` gives such candidates NaN.
        cache_dir: optional directory for the per-architecture score cache.
    """

    def __init__(
        self,
        space: SearchSpace,
        batch: Batch,
        ensemble: str | EnsembleSpec = DEFAULT_ENSEMBLE,
        *,
        seed: int = 0,
        nonfinite: str = "order",
        cache_dir: str | Path | None = None,
    ) -> None:
        self.space = space
        self.batch = batch
        self.spec = parse_ensemble(ensemble) if isinstance(ensemble, str) else ensemble
        self.seed = seed
        self.nonfinite = nonfinite
        self.cache_dir = cache_dir

    def proxy_scores(self, genomes: Sequence[Sequence[int]]) -> ArchScores:
        """Every member proxy's score of each genome's canonical network."""
        return score_architectures(
            self.space,
            genomes,
            self.batch,
            list(self.spec.members),
            seed=self.seed,
            canonical=True,
            cache_dir=self.cache_dir,
        )

    def score(self, genomes: Sequence[Sequence[int]]) -> np.ndarray:
        """Ensemble score of each genome within ``genomes`` (higher = expected more accurate)."""
        genomes = [self.space.validate(g) for g in genomes]
        scores = self.proxy_scores(genomes)
        weights = None if self.spec.weights is None else dict(zip(self.spec.members, self.spec.weights))
        return ensemble(
            self.spec.rule, {m: scores.array(m) for m in self.spec.members}, self.nonfinite, weights
        )

    def __call__(self, genomes: list[Genome]) -> np.ndarray:
        return self.score(genomes)

    def __repr__(self) -> str:
        return f"ZeroCostEstimator({self.space!r}, ensemble={str(self.spec)!r}, seed={self.seed})"
