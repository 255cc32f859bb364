"""Predictors in search: an evaluator-shaped objective, and predictor-assisted evaluation of candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.estimators.predictors._base import AccuracyPredictor
from slimforge.spaces import Genome, SearchSpace

__all__ = ["AssistedResult", "PredictorObjective", "evaluate_top_k"]


class PredictorObjective:
    """A fitted predictor as a search objective: metric ``predicted_error`` = 100 − predicted accuracy.

    It has the shape of :class:`slimforge.search.Evaluator` (``space``, ``metrics``, ``evaluate``,
    ``describe``), so a :class:`slimforge.search.Problem` takes it among its evaluators; a predictor
    with uncertainty also gives ``predicted_error_std``. Predictors that need extra (proxy) features
    cannot be used here, since a genome alone does not carry them.

    Args:
        space: the search space.
        predictor: a fitted :class:`AccuracyPredictor` without extra features.
        metric: name of the predicted-error metric.
    """

    def __init__(
        self, space: SearchSpace, predictor: AccuracyPredictor, metric: str = "predicted_error"
    ) -> None:
        if not predictor.is_fitted:
            raise InvalidInputError(f"predictor {predictor.name!r} is not fitted; fit or load it first")
        if predictor.extra_features:
            raise InvalidInputError(
                f"predictor {predictor.name!r} needs extra features {list(predictor.extra_features)}; "
                "a search objective sees only genomes, so fit one without extra_features"
            )
        self.space = space
        self.predictor = predictor
        self.metric = metric
        self.metrics = (metric, f"{metric}_std") if predictor.has_std else (metric,)

    def evaluate(self, genome: Sequence[int]) -> dict[str, float]:
        """``{metric: 100 - predicted accuracy}`` (and its standard deviation when available)."""
        return self.evaluate_many([genome])[0]

    def evaluate_many(self, genomes: Sequence[Sequence[int]]) -> list[dict[str, float]]:
        """:meth:`evaluate` for many genomes in one vectorised prediction."""
        genomes = [self.space.validate(g) for g in genomes]
        if self.predictor.has_std:
            mean, std = self.predictor.predict_with_std(genomes)  # type: ignore[attr-defined]
            return [
                {self.metric: 100.0 - float(m), f"{self.metric}_std": float(s)} for m, s in zip(mean, std)
            ]
        return [{self.metric: 100.0 - float(m)} for m in self.predictor.predict(genomes)]

    def describe(self) -> dict[str, Any]:
        """Kind, metrics and the predictor's settings, stored with a run."""
        return {
            "kind": type(self).__name__,
            "metrics": list(self.metrics),
            "predictor": self.predictor.name,
            "canonical": self.predictor.canonical,
            "seed": self.predictor.seed,
        }


@dataclass(frozen=True)
class AssistedResult:
    """Outcome of :func:`evaluate_top_k`.

    Attributes:
        genomes: the candidates, in the order given.
        predicted: the predictor's score of each candidate.
        evaluated: whether the expensive objective was run on each candidate.
        values: the expensive objective's value (NaN where not evaluated).
    """

    genomes: tuple[Genome, ...]
    predicted: tuple[float, ...]
    evaluated: tuple[bool, ...]
    values: tuple[float, ...]

    def best(self, higher_is_better: bool = True) -> Genome:
        """The evaluated candidate with the best expensive value."""
        vals = np.where(self.evaluated, self.values, np.nan)
        if np.isnan(vals).all():
            raise InvalidInputError("no candidate was evaluated")
        return self.genomes[int(np.nanargmax(vals) if higher_is_better else np.nanargmin(vals))]


def evaluate_top_k(
    candidates: Sequence[Sequence[int]],
    predict: AccuracyPredictor | Callable[[list[Genome]], np.ndarray],
    expensive: Callable[[Genome], float],
    k: int,
    *,
    space: SearchSpace | None = None,
) -> AssistedResult:
    """Predictor-assisted evaluation: run ``expensive`` only on the ``k`` candidates predicted best.

    Args:
        candidates: genomes to choose from (duplicates are evaluated once).
        predict: a fitted predictor, or any ``genomes -> scores`` callable (higher = better).
        expensive: the costly objective (training, measurement, a table lookup in benchmarks).
        k: how many candidates to evaluate.
        space: validates the genomes when given (a predictor brings its own space).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive int, got {k!r}")
    space = predict.space if isinstance(predict, AccuracyPredictor) else space
    genomes = [space.validate(g) if space is not None else tuple(int(v) for v in g) for g in candidates]
    if not genomes:
        raise InvalidInputError("no candidates to choose from")
    scores = predict.predict(genomes) if isinstance(predict, AccuracyPredictor) else predict(genomes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(genomes):
        raise InvalidInputError(f"the predictor gave {len(scores)} scores for {len(genomes)} candidates")
    # NaN predictions go last; a stable sort keeps the given order among equal scores.
    order = np.argsort(np.where(np.isnan(scores), -np.inf, -scores), kind="stable")
    evaluated = np.zeros(len(genomes), dtype=bool)
    values = np.full(len(genomes), np.nan)
    done: dict[Genome, float] = {}
    for i in order:
        if len(done) >= k:
            break
        g = genomes[int(i)]
        if g not in done:
            done[g] = float(expensive(g))
            evaluated[i] = True
            values[i] = done[g]
    return AssistedResult(
        tuple(genomes),
        tuple(float(s) for s in scores),
        tuple(bool(e) for e in evaluated),
        tuple(float(v) for v in values),
    )
