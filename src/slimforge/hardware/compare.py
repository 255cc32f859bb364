"""Is model B slower than model A on this device? Interleaved rounds and the ratio's spread.

A single pair of medians taken minutes apart on a shared machine can differ by more than the
models do. :func:`compare_latencies` measures every model once per round, in the same process and
on the same device, for several rounds, and reports per model the median of its round medians and
the median and quartiles of its per-round ratio to the first model (the baseline). Because each
round measures every model under the same load, the ratio is much steadier than either latency.

>>> cmp = compare_latencies(get_device("local-cpu"), ["a.onnx", "b.onnx"], (1, 3, 32, 32))  # doctest: +SKIP
>>> cmp.slower(1)          # B slower than A beyond the tolerance?                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.hardware.latency import LatencyProtocol
from slimforge.io import JsonRecord

__all__ = ["DEFAULT_TOLERANCE", "LatencyComparison", "compare_latencies"]

#: a model counts as slower than the baseline when its median ratio exceeds 1 + this.
DEFAULT_TOLERANCE = 0.05


@dataclass(frozen=True)
class LatencyComparison(JsonRecord):
    """Latencies of several models measured interleaved; index 0 is the baseline.

    ``latency_ms[i]`` is the median over rounds of model i's round median (``latency_iqr_ms[i]``
    their inter-quartile range); ``ratio[i]`` the median over rounds of (model i / baseline) in that
    round, ``ratio_q1`` / ``ratio_q3`` its quartiles; ``per_round_ms[r][i]`` is model i's median
    in round r, from which :meth:`ratio_between` takes the ratio of any two models.
    ``tolerance`` is the relative slow-down still counted as noise.
    """

    labels: tuple[str, ...]
    latency_ms: tuple[float, ...]
    latency_iqr_ms: tuple[float, ...]
    ratio: tuple[float, ...]
    ratio_q1: tuple[float, ...]
    ratio_q3: tuple[float, ...]
    rounds: int
    tolerance: float
    device: str
    conditions: str
    per_round_ms: tuple[tuple[float, ...], ...] = ()

    def slower(self, index: int) -> bool:
        """Whether model ``index`` is slower than the baseline beyond the tolerance."""
        return self.ratio[index] > 1.0 + self.tolerance

    def ratio_between(self, i: int, j: int) -> float:
        """Median over rounds of latency(i) / latency(j), both measured in every round."""
        rounds = np.asarray(self.per_round_ms, dtype=float)
        return float(np.median(rounds[:, i] / rounds[:, j]))

    def fastest(self) -> int:
        """The index of the model with the lowest median ratio (the baseline on a tie)."""
        return int(np.argmin(self.ratio))

    def describe(self, index: int) -> str:
        """``0.399 ms vs 0.242 ms (1.65x, IQR 1.60-1.70)`` for model ``index`` against the baseline."""
        return (
            f"{self.latency_ms[index]:.3f} ms vs {self.latency_ms[0]:.3f} ms ({self.ratio[index]:.2f}x, "
            f"IQR {self.ratio_q1[index]:.2f}-{self.ratio_q3[index]:.2f} over {self.rounds} interleaved rounds)"
        )


def compare_latencies(
    device: Any,
    models: Sequence[Any],
    input_shape: Sequence[int],
    *,
    labels: Sequence[str] | None = None,
    threads: int = 1,
    rounds: int = 5,
    time_cap_s: float = 2.0,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> LatencyComparison:
    """Measure ``models`` on ``device`` in ``rounds`` interleaved rounds; ``models[0]`` is the baseline.

    Args:
        device: a :class:`slimforge.hardware.devices.Device` that measures files (not a table).
        models: ``.onnx`` paths (or modules the device can export); at least two.
        input_shape: batch included.
        labels: names for the models (default: their position).
        threads: intra-op threads of the runtime.
        rounds: measurement rounds; each measures every model once.
        time_cap_s: seconds of timed runs per model in all, spread over the rounds.
        tolerance: relative slow-down counted as noise by :meth:`LatencyComparison.slower`.
        seed: seeds the random input.
    """
    if len(models) < 2:
        raise InvalidInputError(f"compare_latencies needs a baseline and at least one model, got {len(models)}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InvalidInputError(f"rounds must be a positive integer, got {rounds!r}")
    if not tolerance >= 0:
        raise InvalidInputError(f"tolerance must be >= 0 (e.g. 0.05 for 5%), got {tolerance!r}")
    if not getattr(device, "cacheable", True):
        raise InvalidInputError(
            f"device {device.spec} answers from a table, not by measuring files; compare on a measured device"
        )
    cap = time_cap_s / rounds
    protocol = LatencyProtocol(
        time_cap_s=cap, min_time_s=min(0.3, cap), warmup_s=min(0.1, cap), warmup_runs=3, min_runs=5
    )
    per_round = np.empty((rounds, len(models)))
    conditions = ""
    for r in range(rounds):
        results = device.measure_many(
            list(models), tuple(input_shape), threads=threads, protocol=protocol, seed=seed, energy=False
        )
        per_round[r] = [m.latency_ms for m in results]
        if results[0].latency is not None:
            conditions = results[0].latency.conditions()
    ratios = per_round / per_round[:, :1]
    q1, median, q3 = np.percentile(ratios, [25, 50, 75], axis=0)
    lat_q1, lat_q3 = np.percentile(per_round, [25, 75], axis=0)
    return LatencyComparison(
        labels=tuple(labels) if labels is not None else tuple(str(i) for i in range(len(models))),
        latency_ms=tuple(float(v) for v in np.median(per_round, axis=0)),
        latency_iqr_ms=tuple(float(b - a) for a, b in zip(lat_q1, lat_q3)),
        ratio=tuple(float(v) for v in median),
        ratio_q1=tuple(float(v) for v in q1),
        ratio_q3=tuple(float(v) for v in q3),
        rounds=rounds,
        tolerance=float(tolerance),
        device=device.spec,
        conditions=f"{conditions}; {rounds} interleaved rounds of up to {cap:.2g} s per model",
        per_round_ms=tuple(tuple(float(v) for v in row) for row in per_round),
    )
