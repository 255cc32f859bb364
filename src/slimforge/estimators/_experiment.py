"""How well do proxies rank a space's architectures? Score a seeded sample of a ground-truth table.

:func:`evaluate_proxies` draws ``sample`` architectures from an accuracy table with ``seed``, scores
each one's network (initial weights from ``seed``) on one minibatch of real images (drawn with
``seed``), and reports Spearman ρ and Kendall τ of every proxy and ensemble against the table, with
the CPU seconds each costs per architecture.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.estimators._ranking import ENSEMBLE_RULES, Correlation, CorrelationRecord, correlate, ensemble
from slimforge.estimators._scoring import SKIPPED, ArchScores, score_architectures
from slimforge.estimators._table import read_accuracy_table
from slimforge.estimators.proxies import PROXIES
from slimforge.spaces import SearchSpace, get_space

__all__ = ["EnsembleSpec", "ProxyEvaluation", "ProxyReport", "evaluate_proxies", "parse_ensemble"]


@dataclass(frozen=True)
class EnsembleSpec:
    """An ensemble: a rule (``rank_average`` or ``vote``) over proxies, with optional weights.

    Written ``RULE:PROXY[=WEIGHT]+PROXY[=WEIGHT]...``, e.g. ``rank_average:naswot=2+synflow``.
    """

    rule: str
    members: tuple[str, ...]
    weights: tuple[float, ...] | None = None

    def __str__(self) -> str:
        if self.weights is None:
            return f"{self.rule}:{'+'.join(self.members)}"
        return f"{self.rule}:" + "+".join(f"{m}={w:g}" for m, w in zip(self.members, self.weights))


_MEMBER = re.compile(r"^([A-Za-z0-9_]+)(?:=([0-9.eE+-]+))?$")


def parse_ensemble(text: str) -> EnsembleSpec:
    """Parse ``RULE:PROXY[=WEIGHT]+...``; a malformed spec raises InvalidInputError naming the fix."""
    example = "e.g. rank_average:naswot+synflow or vote:synflow+naswot+jacob_cov"
    rule, sep, rest = str(text).partition(":")
    if not sep or rule not in ENSEMBLE_RULES:
        raise InvalidInputError(
            f"ensemble {text!r}: start with a rule ({', '.join(ENSEMBLE_RULES)}) and a colon, {example}"
        )
    members, weights = [], []
    for part in rest.split("+"):
        m = _MEMBER.match(part.strip())
        if not m:
            raise InvalidInputError(f"ensemble {text!r}: cannot read member {part!r}, {example}")
        if m.group(1) not in PROXIES:
            raise InvalidInputError(
                f"ensemble {text!r}: unknown proxy {m.group(1)!r} (known: {', '.join(PROXIES.list())})"
            )
        members.append(m.group(1))
        try:
            weights.append(None if m.group(2) is None else float(m.group(2)))
        except ValueError:
            raise InvalidInputError(f"ensemble {text!r}: weight {m.group(2)!r} is not a number") from None
    if len(members) < 2 or len(set(members)) != len(members):
        raise InvalidInputError(f"ensemble {text!r}: name at least two different proxies, {example}")
    given = [w is not None for w in weights]
    if any(given) and rule == "vote":
        raise InvalidInputError(f"ensemble {text!r}: the vote rule takes no weights")
    if any(given) and not all(given):
        weights = [1.0 if w is None else w for w in weights]
    return EnsembleSpec(rule, tuple(members), tuple(weights) if any(given) else None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProxyEvaluation(CorrelationRecord):
    """One proxy's (or ensemble's) agreement with the table and its cost.

    Attributes:
        name: proxy name or ensemble spec.
        spearman_rho / kendall_tau: over the architectures it could rank.
        num_archs: architectures ranked.
        num_nan / num_inf: architectures whose score was NaN / ±inf.
        num_skipped: architectures on which the proxy (or a member) could not run.
        cpu_s_per_arch: mean CPU seconds per architecture, network construction included.
    """

    name: str
    spearman_rho: float
    kendall_tau: float
    num_archs: int
    num_nan: int
    num_inf: int
    num_skipped: int
    cpu_s_per_arch: float


@dataclass(frozen=True)
class ProxyReport:
    """Result of :func:`evaluate_proxies`: settings, one row per proxy and ensemble, and the raw scores.

    ``scores`` (every architecture's score) is None in a report read back without them.
    """

    space: str
    data: str
    table: str
    sample: int
    seed: int
    batch_size: int
    canonical: bool
    nonfinite: str
    rows: tuple[ProxyEvaluation, ...]
    scores: ArchScores | None = None

    def to_dict(self, with_scores: bool = False) -> dict[str, Any]:
        """JSON-compatible dict; the per-architecture scores only when ``with_scores``."""
        d: dict[str, Any] = {k: getattr(self, k) for k in _SETTINGS}
        d["rows"] = [r.to_dict() for r in self.rows]
        if with_scores and self.scores is not None:
            d["scores"] = self.scores.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxyReport:
        """Inverse of :meth:`to_dict`."""
        scores = ArchScores.from_dict(data["scores"]) if data.get("scores") is not None else None
        return cls(
            **{k: data[k] for k in _SETTINGS},
            rows=tuple(ProxyEvaluation.from_dict(r) for r in data["rows"]),
            scores=scores,
        )


_SETTINGS = ("space", "data", "table", "sample", "seed", "batch_size", "canonical", "nonfinite")


def _row(corr: Correlation, skipped: int, cpu: float) -> ProxyEvaluation:
    return ProxyEvaluation(
        corr.name,
        corr.spearman_rho,
        corr.kendall_tau,
        corr.num_archs,
        corr.num_nan - skipped,
        corr.num_inf,
        skipped,
        cpu,
    )


def evaluate_proxies(
    space: str | SearchSpace,
    data: str,
    proxies: Sequence[str] | str,
    table: str | os.PathLike,
    *,
    sample: int = 1000,
    seed: int = 0,
    batch_size: int = 64,
    canonical: bool = True,
    ensembles: Sequence[str | EnsembleSpec] = (),
    nonfinite: str = "drop",
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProxyReport:
    """Rank correlation of proxies (and ensembles) with a ground-truth table on a seeded sample.

    Args:
        space: the search space (or its registry name) the table's architectures belong to.
        data: a data spec (``npz:../shared/data/cifar10_subset.npz``); one training minibatch is used.
        proxies: proxy names (``"synflow,naswot"``); ensemble members are added when missing.
        table: CSV with ``arch`` and ``accuracy`` columns.
        sample: architectures drawn from the table.
        seed: seeds the architecture sample, the minibatch and the networks' initial weights.
        batch_size: images in the minibatch.
        canonical: score each genome's canonical network (dead edges removed).
        ensembles: specs like ``"rank_average:naswot+synflow"`` (see :func:`parse_ensemble`).
        nonfinite: ``"drop"`` leaves NaN/±inf scores out of the rankings; ``"order"`` ranks ±inf at the ends.
        cache_dir: directory for a per-architecture score cache (CSV), so a rerun does not recompute.
        progress: called with the number of architectures scored so far.
    """
    from slimforge.data import load_dataset, sample_batch

    space = get_space(space) if isinstance(space, str) else space
    names = (
        [p.strip() for p in proxies.split(",") if p.strip()] if isinstance(proxies, str) else list(proxies)
    )
    specs = [parse_ensemble(e) if isinstance(e, str) else e for e in ensembles]
    for spec in specs:
        names.extend(m for m in spec.members if m not in names)
    if not names:
        raise InvalidInputError("no proxies given; name at least one, e.g. --proxies synflow,naswot")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise InvalidInputError(f"batch_size must be an int >= 2, got {batch_size!r}")
    truth_table = read_accuracy_table(table, space)
    rows_idx = truth_table.sample(sample, seed)
    genomes = [truth_table.genomes[i] for i in rows_idx]
    truth = np.array([truth_table.accuracy[i] for i in rows_idx])
    splits = load_dataset(data, seed=seed)
    batch = sample_batch(splits.train, batch_size, seed=seed)
    scores = score_architectures(
        space, genomes, batch, names, seed=seed, canonical=canonical, cache_dir=cache_dir, progress=progress
    )
    build = float(np.mean(scores.build_cpu_s))
    rows = []
    for p in scores.proxies:
        skipped = sum(s == SKIPPED for s in scores.status[p])
        rows.append(
            _row(
                correlate(p, scores.array(p), truth, nonfinite),
                skipped,
                float(np.mean(scores.cpu_s[p])) + build,
            )
        )
    for spec in specs:
        cols = {m: scores.array(m) for m in spec.members}
        weights = None if spec.weights is None else dict(zip(spec.members, spec.weights))
        combined = ensemble(spec.rule, cols, nonfinite, weights)
        skipped = int(np.any([np.asarray(scores.status[m]) == SKIPPED for m in spec.members], axis=0).sum())
        cpu = sum(float(np.mean(scores.cpu_s[m])) for m in spec.members) + build
        rows.append(_row(correlate(str(spec), combined, truth, nonfinite), skipped, cpu))
    return ProxyReport(
        space.name, str(data), str(table), sample, seed, batch_size, canonical, nonfinite, tuple(rows), scores
    )
