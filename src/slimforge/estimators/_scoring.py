"""Batch scoring: many proxies on one model, many architectures of a space, with a CSV cache.

A proxy that cannot run on a model is skipped with a :class:`ProxySkippedWarning`, never a crash;
a NaN or infinite score is kept as it is and flagged by its status, so that rankings can leave it
out openly instead of ordering it silently.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.estimators.proxies import Batch, Proxy, ProxyNotApplicableError, get_proxy
from slimforge.spaces import SearchSpace

__all__ = [
    "ArchScores",
    "ProxyResult",
    "ProxySkippedWarning",
    "build_network",
    "resolve_proxies",
    "score_architectures",
    "score_model",
]

OK, NONFINITE, SKIPPED = "ok", "nonfinite", "skipped"


class ProxySkippedWarning(UserWarning):
    """A proxy could not score a model and was skipped (the message says why)."""


def _float_to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # "nan", "inf", "-inf": JSON has no such numbers


def _float_from_json(value: float | str) -> float:
    return float(value)


@dataclass(frozen=True)
class ProxyResult:
    """One proxy's score of one model.

    Attributes:
        proxy: the proxy's name.
        score: the score; NaN when skipped, and possibly NaN/±inf when the proxy gave that.
        status: ``"ok"`` (finite), ``"nonfinite"`` (NaN or ±inf) or ``"skipped"`` (not applicable).
        cpu_s: CPU seconds the proxy took (process time, all threads).
        message: why it was skipped, or empty.
    """

    proxy: str
    score: float
    status: str
    cpu_s: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (non-finite scores as the strings ``"nan"``, ``"inf"``, ``"-inf"``)."""
        return {
            "proxy": self.proxy,
            "score": _float_to_json(self.score),
            "status": self.status,
            "cpu_s": self.cpu_s,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxyResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            proxy=str(data["proxy"]),
            score=_float_from_json(data["score"]),
            status=str(data["status"]),
            cpu_s=float(data["cpu_s"]),
            message=str(data.get("message", "")),
        )


def resolve_proxies(proxies: Sequence[str | Proxy] | str) -> list[Proxy]:
    """Proxy instances from names (``"synflow,naswot"`` or a list) or instances; duplicates raise."""
    if isinstance(proxies, str):
        proxies = [p.strip() for p in proxies.split(",") if p.strip()]
    out = [get_proxy(p) if isinstance(p, str) else p for p in proxies]
    if not out:
        raise InvalidInputError("no proxies given; name at least one, e.g. 'synflow,naswot'")
    for p in out:
        if not isinstance(p, Proxy):
            raise InvalidInputError(f"{p!r} is not a proxy name or a Proxy")
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInputError(f"proxy {', '.join(dup)} listed twice")
    return out


def score_model(
    model: torch.nn.Module, batch: Batch, proxies: Sequence[str | Proxy] | str, *, seed: int = 0
) -> dict[str, ProxyResult]:
    """Every proxy's score of ``model`` on one minibatch; inapplicable proxies are skipped with a warning.

    Args:
        model: any network; it is not changed.
        batch: images, or ``(images, labels)``.
        proxies: names or instances.
        seed: passed to every proxy.

    Returns:
        proxy name -> :class:`ProxyResult`, in the order given.
    """
    results: dict[str, ProxyResult] = {}
    for proxy in resolve_proxies(proxies):
        start = time.process_time()
        try:
            value = proxy.score(model, batch, seed=seed)
        except ProxyNotApplicableError as exc:
            warnings.warn(f"skipping proxy {proxy.name!r}: {exc}", ProxySkippedWarning, stacklevel=2)
            results[proxy.name] = ProxyResult(
                proxy.name, math.nan, SKIPPED, time.process_time() - start, str(exc)
            )
            continue
        status = OK if math.isfinite(value) else NONFINITE
        results[proxy.name] = ProxyResult(proxy.name, value, status, time.process_time() - start)
    return results


def build_network(
    space: SearchSpace, genome: Sequence[int], *, seed: int, num_classes: int = 10
) -> torch.nn.Module:
    """``space.build(genome)`` with its initial weights drawn from ``seed`` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(genome, num_classes)


@dataclass(frozen=True)
class ArchScores:
    """Proxy scores of a list of architectures.

    Attributes:
        archs: the architectures' strings, in the order scored.
        proxies: proxy names.
        scores: ``scores[p][i]`` is proxy ``p``'s score of architecture ``i`` (NaN when skipped).
        status: ``status[p][i]`` is ``"ok"``, ``"nonfinite"`` or ``"skipped"``.
        cpu_s: ``cpu_s[p][i]`` CPU seconds of proxy ``p`` on architecture ``i``.
        build_cpu_s: CPU seconds spent building each network (shared by every proxy).
    """

    archs: tuple[str, ...]
    proxies: tuple[str, ...]
    scores: dict[str, tuple[float, ...]]
    status: dict[str, tuple[str, ...]]
    cpu_s: dict[str, tuple[float, ...]]
    build_cpu_s: tuple[float, ...]

    def array(self, proxy: str) -> np.ndarray:
        """Proxy ``proxy``'s scores as a float array."""
        if proxy not in self.scores:
            raise InvalidInputError(f"no scores for proxy {proxy!r} (scored: {', '.join(self.proxies)})")
        return np.asarray(self.scores[proxy], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (non-finite scores as strings)."""
        return {
            "archs": list(self.archs),
            "proxies": list(self.proxies),
            "scores": {p: [_float_to_json(v) for v in vals] for p, vals in self.scores.items()},
            "status": {p: list(v) for p, v in self.status.items()},
            "cpu_s": {p: list(v) for p, v in self.cpu_s.items()},
            "build_cpu_s": list(self.build_cpu_s),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchScores:
        """Inverse of :meth:`to_dict`."""
        return cls(
            archs=tuple(data["archs"]),
            proxies=tuple(data["proxies"]),
            scores={p: tuple(_float_from_json(v) for v in vals) for p, vals in data["scores"].items()},
            status={p: tuple(v) for p, v in data["status"].items()},
            cpu_s={p: tuple(float(x) for x in v) for p, v in data["cpu_s"].items()},
            build_cpu_s=tuple(float(x) for x in data["build_cpu_s"]),
        )


_CACHE_FIELDS = ("arch", "proxy", "score", "status", "cpu_s", "build_cpu_s", "message")


def _proxy_key(proxy: Proxy) -> str:
    # The repr names the proxy's settings (ZicoProxy(parts=2)), so differently set proxies never share rows.
    return repr(proxy)


def _fingerprint(space: SearchSpace, batch: Batch, seed: int, canonical: bool, num_classes: int) -> str:
    """A key of everything a cached score depends on except the architecture and the proxy name."""
    h = hashlib.sha256()
    h.update(f"{space!r}|seed={seed}|canonical={canonical}|classes={num_classes}".encode())
    tensors = [batch] if isinstance(batch, torch.Tensor) else list(batch)
    for t in tensors:
        t = t.detach().contiguous().cpu()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _read_cache(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    if not path.exists():
        return {}
    rows: dict[tuple[str, str], dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("arch") and row.get("proxy") and row.get("status") in (OK, NONFINITE, SKIPPED):
                rows[(row["arch"], row["proxy"])] = row
    return rows


def score_architectures(
    space: SearchSpace,
    genomes: Sequence[Sequence[int]],
    batch: Batch,
    proxies: Sequence[str | Proxy] | str,
    *,
    seed: int = 0,
    canonical: bool = True,
    num_classes: int = 10,
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ArchScores:
    """Score each architecture's standalone network with every proxy.

    Args:
        space: the search space.
        genomes: architectures to score.
        batch: the minibatch every network is scored on.
        proxies: names or instances.
        seed: seeds the networks' initial weights (the same seed for each) and the proxies.
        canonical: build ``space.canonical(genome)``, whose dead edges are removed, instead of the
            genome as written; the two compute the same function.
        num_classes: classifier outputs of the built networks.
        cache_dir: if given, scores are appended to a CSV file there as they are computed (one file per
            space, batch, seed and setting) and read back instead of recomputed.
        progress: called with the number of architectures done after each one.
    """
    plist = resolve_proxies(proxies)
    names = tuple(p.name for p in plist)
    genomes = [space.validate(g) for g in genomes]
    cache_path = None
    cached: dict[tuple[str, str], dict[str, str]] = {}
    if cache_dir is not None:
        key = _fingerprint(space, batch, seed, canonical, num_classes)
        cache_path = Path(cache_dir) / f"proxy_scores_{space.name or 'space'}_{key}.csv"
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cached = _read_cache(cache_path)
    scores = {n: [] for n in names}
    status = {n: [] for n in names}
    cpu = {n: [] for n in names}
    build_cpu: list[float] = []
    writer_file = None
    try:
        if cache_path is not None:
            new_file = not cache_path.exists()
            writer_file = cache_path.open("a", newline="", encoding="utf-8")
            writer = csv.DictWriter(writer_file, fieldnames=_CACHE_FIELDS)
            if new_file:
                writer.writeheader()
        for done, genome in enumerate(genomes, start=1):
            arch = space.to_string(genome)
            missing = [p for p in plist if (arch, _proxy_key(p)) not in cached]
            build_s = 0.0
            fresh: dict[str, ProxyResult] = {}
            if missing:
                start = time.process_time()
                model = build_network(
                    space,
                    space.canonical(genome) if canonical else genome,
                    seed=seed,
                    num_classes=num_classes,
                )
                build_s = time.process_time() - start
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ProxySkippedWarning)
                    fresh = score_model(model, batch, missing, seed=seed)
                for w in caught:  # re-issue, skips with the architecture named
                    if issubclass(w.category, ProxySkippedWarning):
                        warnings.warn(f"{arch}: {w.message}", ProxySkippedWarning, stacklevel=2)
                    else:
                        warnings.warn(w.message, w.category, stacklevel=2)
                for p in missing:
                    r = fresh[p.name]
                    row = {
                        "arch": arch,
                        "proxy": _proxy_key(p),
                        "score": repr(r.score),
                        "status": r.status,
                        "cpu_s": repr(r.cpu_s),
                        "build_cpu_s": repr(build_s),
                        "message": r.message,
                    }
                    cached[(arch, _proxy_key(p))] = row
                    if writer_file is not None:
                        writer.writerow(row)
                if writer_file is not None:
                    writer_file.flush()
            arch_build = []
            for p, n in zip(plist, names):
                row = cached[(arch, _proxy_key(p))]
                if row["status"] == SKIPPED and p not in missing:  # warn for cached skips too
                    warnings.warn(
                        f"{arch}: skipping proxy {n!r}: {row['message']}", ProxySkippedWarning, stacklevel=2
                    )
                scores[n].append(float(row["score"]))
                status[n].append(row["status"])
                cpu[n].append(float(row["cpu_s"]))
                arch_build.append(float(row["build_cpu_s"]))
            build_cpu.append(build_s if missing else float(np.mean(arch_build)))
            if progress is not None:
                progress(done)
    finally:
        if writer_file is not None:
            writer_file.close()
    return ArchScores(
        archs=tuple(space.to_string(g) for g in genomes),
        proxies=names,
        scores={n: tuple(v) for n, v in scores.items()},
        status={n: tuple(v) for n, v in status.items()},
        cpu_s={n: tuple(v) for n, v in cpu.items()},
        build_cpu_s=tuple(build_cpu),
    )
