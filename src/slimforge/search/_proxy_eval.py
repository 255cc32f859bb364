"""``proxy``: a per-genome zero-cost accuracy estimate from one or several proxies.

An ensemble that averages ranks (:class:`slimforge.estimators.ZeroCostEstimator`) scores a genome
relative to the set it is ranked with, so the same genome would get different scores in different
generations of a search. This evaluator needs a score of the genome alone, so it compares each
proxy's score with a *fixed reference sample* instead:

1. at first use, ``reference`` distinct canonical genomes are drawn with ``seed`` and scored by
   every proxy, on one minibatch of ``batch_size`` training images (also drawn with ``seed``),
   each network's initial weights drawn from ``seed`` (as :func:`~slimforge.estimators.score_architectures`
   does);
2. a score ``x`` is squashed to ``t = sign(x)·log1p(|x|)`` (SynFlow-like proxies span dozens of
   orders of magnitude) and standardised with the mean and standard deviation of ``t`` over the
   reference sample: ``z = (t - mean) / std``;
3. ``proxy_score`` is the weighted mean of the proxies' ``z``; ``proxy_score_neg`` is its negative,
   the metric to minimise.

A score that is NaN, ``-inf`` or skipped (the proxy cannot run on that network) counts as one
standard deviation below the worst reference score, ``+inf`` one above the best, so every genome gets a
finite value. The metric depends only on the genome and the evaluator's options, so it is
deterministic and may be cached and resumed like any other.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search._networks import check_num_classes
from slimforge.search.evaluator import BatchEvaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["ProxyEvaluator", "parse_proxy_weights"]

_MEMBER = re.compile(r"^([A-Za-z0-9_]+)(?:=([0-9.eE+-]+))?$")
# Genome draws allowed per wanted reference genome before a small space is taken as exhausted.
_DRAWS_PER_REFERENCE = 50


def parse_proxy_weights(text: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``"meco=2,jacob_cov,num_params"`` (commas or ``+``) -> (names, weights); unknown names raise."""
    from slimforge.estimators import PROXIES

    example = "e.g. 'meco,jacob_cov,num_params' or 'meco=2,jacob_cov'"
    parts = [p.strip() for p in re.split(r"[,+]", str(text)) if p.strip()]
    if not parts:
        raise InvalidInputError(f"proxies {text!r}: name at least one zero-cost proxy, {example}")
    names, weights = [], []
    for part in parts:
        m = _MEMBER.match(part)
        if not m:
            raise InvalidInputError(f"proxies {text!r}: cannot read {part!r}, {example}")
        if m.group(1) not in PROXIES:
            raise InvalidInputError(
                f"proxies {text!r}: unknown proxy {m.group(1)!r} (known: {', '.join(PROXIES.list())})"
            )
        try:
            weight = 1.0 if m.group(2) is None else float(m.group(2))
        except ValueError:
            raise InvalidInputError(f"proxies {text!r}: weight {m.group(2)!r} is not a number") from None
        if not (math.isfinite(weight) and weight > 0):
            raise InvalidInputError(f"proxies {text!r}: weight {m.group(2)!r} must be a positive number")
        names.append(m.group(1))
        weights.append(weight)
    if len(set(names)) != len(names):
        raise InvalidInputError(f"proxies {text!r}: a proxy is listed twice")
    return tuple(names), tuple(weights)


def _squash(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sign(values) * np.log1p(np.abs(values))


class ProxyEvaluator(BatchEvaluator):
    """``proxy_score_neg`` (minimise) and ``proxy_score``: zero-cost proxies against a fixed reference sample.

    See the module docstring for the definition.

    Args:
        space: the search space.
        proxies: proxy names with optional weights, ``"meco,jacob_cov,num_params"`` or ``"meco=2,jacob_cov"``.
        data: data spec of the minibatch (training part); the built-in ``digits`` by default.
        batch_size: images in the minibatch (at least 2).
        seed: draws the reference sample, the minibatch and the networks' initial weights.
        num_classes: classifier outputs of the built networks.
        reference: genomes in the reference sample (at least 2).
    """

    _transient = ("_batch",)

    def __init__(
        self,
        space: SearchSpace,
        proxies: str = "meco,jacob_cov,num_params",
        data: str = "digits",
        batch_size: int = 16,
        seed: int = 0,
        num_classes: int = 10,
        reference: int = 32,
    ) -> None:
        super().__init__(space, ("proxy_score_neg", "proxy_score"))
        self.proxies, self.weights = parse_proxy_weights(proxies)
        checks = (("batch_size", batch_size, 2), ("seed", seed, 0), ("reference", reference, 2))
        for name, value, lowest in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise InvalidInputError(
                    f"proxy evaluator: {name} must be an integer >= {lowest}, got {value!r}"
                )
        self.data = str(data)
        self.batch_size = batch_size
        self.seed = seed
        self.num_classes = check_num_classes(num_classes)
        self.reference = reference
        self._batch: Any = None
        # Per proxy: (mean, std, lowest z, highest z) of the reference sample; plain floats, so
        # they travel with a pickle and a worker does not score the reference sample again.
        self._stats: dict[str, tuple[float, float, float, float]] | None = None

    def _minibatch(self) -> Any:
        if self._batch is None:
            from slimforge.data import load_dataset, sample_batch

            splits = load_dataset(self.data, seed=self.seed)
            if splits.num_classes > self.num_classes:
                raise InvalidInputError(
                    f"data {self.data!r} has {splits.num_classes} classes but the networks get "
                    f"num_classes={self.num_classes}; raise num_classes"
                )
            self._batch = sample_batch(splits.train, self.batch_size, seed=self.seed)
        return self._batch

    def _raw_scores(self, genomes: list[Genome]) -> dict[str, np.ndarray]:
        from slimforge.estimators import ProxySkippedWarning, score_architectures

        with warnings.catch_warnings():
            # A skipped proxy is handled openly below (worst score), not worth a warning per genome.
            warnings.simplefilter("ignore", ProxySkippedWarning)
            scores = score_architectures(
                self.space,
                genomes,
                self._minibatch(),
                list(self.proxies),
                seed=self.seed,
                canonical=True,
                num_classes=self.num_classes,
            )
        return {p: scores.array(p) for p in self.proxies}

    def _reference_stats(self) -> dict[str, tuple[float, float, float, float]]:
        if self._stats is None:
            rng = np.random.default_rng(self.seed)
            sample: dict[Genome, None] = {}
            for _ in range(self.reference * _DRAWS_PER_REFERENCE):
                sample.setdefault(self.space.canonical(self.space.sample(rng)))
                if len(sample) == self.reference:
                    break
            raw = self._raw_scores(list(sample))
            stats = {}
            for p in self.proxies:
                t = _squash(raw[p])
                finite = t[np.isfinite(t)]
                if len(finite) == 0:
                    raise InvalidInputError(
                        f"proxy {p!r} gave no finite score on any of {len(t)} reference {self.space.name} "
                        f"architectures; drop it from the proxies"
                    )
                mean = float(finite.mean())
                std = float(finite.std()) if len(finite) > 1 and finite.std() > 0 else 1.0
                z = (finite - mean) / std
                stats[p] = (mean, std, float(z.min()), float(z.max()))
            self._stats = stats
        return self._stats

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        stats = self._reference_stats()
        raw = self._raw_scores(genomes)
        total = np.zeros(len(genomes))
        for p, w in zip(self.proxies, self.weights):
            mean, std, lowest, highest = stats[p]
            t = _squash(raw[p])
            z = np.where(np.isposinf(t), highest + 1.0, lowest - 1.0)
            finite = np.isfinite(t)
            z[finite] = (t[finite] - mean) / std
            total += w * z
        score = total / sum(self.weights)
        return [{"proxy_score_neg": -float(s), "proxy_score": float(s)} for s in score]

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "proxies": dict(zip(self.proxies, self.weights)),
            "data": self.data,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "num_classes": self.num_classes,
            "reference": self.reference,
        }
