"""Measured latency: warm-up, then repeated runs until the spread is stable or a time cap.

The statistic is the median and the spread the inter-quartile range: both ignore the few runs a
busy machine stretches. A measurement that does not reach the relative-IQR threshold before the
time cap comes back with ``stable=False`` rather than silently (DESIGN.md, measurement contract).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.runtime import RUNTIMES, Runtime, check_threads
from slimforge.io import JsonRecord

__all__ = [
    "LatencyProtocol",
    "LatencyResult",
    "LatencySamples",
    "cpu_model",
    "measure_latencies",
    "measure_latency",
    "sample_latencies",
    "sample_latency",
]


@dataclass(frozen=True)
class LatencyProtocol(JsonRecord):
    """How a latency is measured.

    Args:
        warmup_runs: runs discarded first (caches, allocator, lazy initialisation)...
        warmup_s: ...or fewer, once warm-up has taken this long.
        min_runs: runs before the spread is first checked.
        min_time_s: seconds of timed runs before the spread is first checked, so a fast model is
            sampled over more than one scheduler slice.
        max_runs: stop after this many timed runs.
        time_cap_s: stop after this many seconds of timed runs, stable or not.
        rel_iqr_threshold: stop once IQR / median is at or below this; a run that stops for any
            other reason above it is flagged unstable.
    """

    warmup_runs: int = 10
    warmup_s: float = 1.0
    min_runs: int = 20
    min_time_s: float = 1.0
    max_runs: int = 100_000
    time_cap_s: float = 10.0
    rel_iqr_threshold: float = 0.10

    def __post_init__(self) -> None:
        for name in ("warmup_runs", "min_runs", "max_runs"):
            value = getattr(self, name)
            lowest = 0 if name == "warmup_runs" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise InvalidInputError(
                    f"latency protocol: {name} must be an integer >= {lowest}, got {value!r}"
                )
        for name in ("warmup_s", "min_time_s", "time_cap_s", "rel_iqr_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidInputError(
                    f"latency protocol: {name} must be a non-negative number, got {value!r}"
                )
        if self.time_cap_s <= 0:
            raise InvalidInputError(
                f"latency protocol: time_cap_s must be positive, got {self.time_cap_s!r}; use e.g. 10"
            )
        if self.min_runs > self.max_runs:
            raise InvalidInputError(
                f"latency protocol: min_runs ({self.min_runs}) exceeds max_runs ({self.max_runs})"
            )


@dataclass(frozen=True)
class LatencyResult(JsonRecord):
    """One latency measurement and every condition it was taken under."""

    runtime: str
    runtime_version: str
    threads: int
    batch_size: int
    input_shape: tuple[int, ...]
    cpu_model: str
    cpu_count: int
    statistic: str
    latency_ms_median: float
    latency_ms_iqr: float
    latency_ms_q1: float
    latency_ms_q3: float
    latency_ms_min: float
    relative_iqr: float
    num_runs: int
    warmup_runs: int
    measure_s: float
    stable: bool
    protocol: LatencyProtocol

    def conditions(self) -> str:
        """The measurement conditions on one line."""
        return (
            f"{self.runtime} {self.runtime_version}, {self.threads} thread{'s' if self.threads != 1 else ''}, "
            f"batch {self.batch_size}, input {format_shape(self.input_shape)}, CPU {self.cpu_model} "
            f"({self.cpu_count} logical cores)"
        )

    def summary(self) -> str:
        """``median ms (IQR ms, N runs)`` with the stability verdict."""
        verdict = (
            "stable"
            if self.stable
            else f"UNSTABLE: relative IQR {self.relative_iqr:.1%} above {self.protocol.rel_iqr_threshold:.0%} at the cap"
        )
        return (
            f"{self.latency_ms_median:.3f} ms median, IQR {self.latency_ms_iqr:.3f} ms "
            f"({self.relative_iqr:.1%}), {self.num_runs} runs after {self.warmup_runs} warm-up, {verdict}"
        )


@dataclass(frozen=True)
class LatencySamples:
    """Raw timings of one protocol run."""

    samples_ms: tuple[float, ...]
    warmup_runs: int
    measure_s: float
    stable: bool


def cpu_model() -> str:
    """This machine's CPU model name (``/proc/cpuinfo`` on Linux; ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _relative_iqr(samples: list[float]) -> float:
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return float((q3 - q1) / median) if median > 0 else float("inf")


def _warm_up(run_once: Callable[[], object], protocol: LatencyProtocol) -> int:
    start = time.perf_counter()
    runs = 0
    while runs < protocol.warmup_runs and (runs == 0 or time.perf_counter() - start < protocol.warmup_s):
        run_once()
        runs += 1
    return runs


def sample_latencies(
    runs: Sequence[Callable[[], object]],
    protocol: LatencyProtocol,
    *,
    block_s: float = 0.05,
    progress: bool = False,
    desc: str = "latency",
) -> list[LatencySamples]:
    """Time several one-inference functions with their runs interleaved in short blocks.

    Each function is warmed up, then the functions take turns running for ``block_s`` seconds each
    until every one has stopped under ``protocol`` (spread stable, time cap on its own timed
    seconds, or run cap). Interleaving exposes all of them to the same machine load, which makes
    their medians comparable on a shared machine.

    Args:
        runs: one function per model, each running one inference.
        protocol: warm-up, stopping rule and caps (per function).
        block_s: seconds of consecutive runs of one function before the next takes its turn.
        progress: show a tqdm bar on stderr (it appears only if measuring takes over a second).
        desc: the bar's label.
    """
    from slimforge.io import progress_bar

    warmups = [_warm_up(run, protocol) for run in runs]
    samples: list[list[float]] = [[] for _ in runs]
    timed_s = [0.0] * len(runs)
    stable = [False] * len(runs)
    active = list(range(len(runs)))
    with progress_bar(
        total=round(protocol.time_cap_s * len(runs), 1),
        desc=desc,
        unit="s",
        enabled=progress,
        delay=1.0,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} s{postfix}",
    ) as bar:
        while active:
            for i in list(active):
                run, mine = runs[i], samples[i]
                block_start = time.perf_counter()
                block_end = block_start + min(block_s, protocol.time_cap_s - timed_s[i])
                while True:
                    t0 = time.perf_counter_ns()
                    run()
                    mine.append((time.perf_counter_ns() - t0) / 1e6)
                    if time.perf_counter() >= block_end or len(mine) >= protocol.max_runs:
                        break
                spent = time.perf_counter() - block_start
                timed_s[i] += spent
                bar.update(spent)
                bar.set_postfix_str(f"{sum(len(s) for s in samples)} runs", refresh=False)
                if len(mine) >= protocol.min_runs and timed_s[i] >= protocol.min_time_s:
                    stable[i] = _relative_iqr(mine) <= protocol.rel_iqr_threshold
                    if stable[i]:
                        active.remove(i)
                        continue
                if timed_s[i] >= protocol.time_cap_s or len(mine) >= protocol.max_runs:
                    active.remove(i)
    return [LatencySamples(tuple(s), w, t, ok) for s, w, t, ok in zip(samples, warmups, timed_s, stable)]


def sample_latency(
    run_once: Callable[[], object],
    protocol: LatencyProtocol,
    *,
    progress: bool = False,
    desc: str = "latency",
) -> LatencySamples:
    """Time ``run_once`` under ``protocol``; returns the timed samples in milliseconds."""
    return sample_latencies([run_once], protocol, progress=progress, desc=desc)[0]


def _result(
    engine: Runtime,
    runtime: str,
    threads: int,
    shape: tuple[int, ...],
    protocol: LatencyProtocol,
    timed: LatencySamples,
) -> LatencyResult:
    q1, median, q3 = (float(v) for v in np.percentile(timed.samples_ms, [25, 50, 75]))
    return LatencyResult(
        runtime=runtime,
        runtime_version=engine.version(),
        threads=threads,
        batch_size=shape[0],
        input_shape=shape,
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        statistic="median",
        latency_ms_median=median,
        latency_ms_iqr=q3 - q1,
        latency_ms_q1=q1,
        latency_ms_q3=q3,
        latency_ms_min=float(min(timed.samples_ms)),
        relative_iqr=(q3 - q1) / median if median > 0 else 0.0,
        num_runs=len(timed.samples_ms),
        warmup_runs=timed.warmup_runs,
        measure_s=timed.measure_s,
        stable=timed.stable,
        protocol=protocol,
    )


def measure_latency(
    model_or_path: nn.Module | str | Path,
    input_shape: Sequence[int] | str = (1, 3, 224, 224),
    *,
    runtime: str = "onnxruntime",
    threads: int = 1,
    protocol: LatencyProtocol | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LatencyResult:
    """Measure the latency of one inference of a model on this machine.

    Args:
        model_or_path: an ``nn.Module`` or a ``.onnx`` file (ONNX Runtime only).
        input_shape: the input, batch included, e.g. ``(1, 3, 224, 224)``.
        runtime: a name from ``RUNTIMES`` (``onnxruntime``, ``torch``).
        threads: intra-op threads.
        protocol: warm-up and stopping rule; :class:`LatencyProtocol` defaults when None.
        seed: seeds the random input.
        progress: tqdm bar on stderr while measuring.

    Returns:
        The median, IQR and run count with the conditions; ``stable=False`` flags a measurement
        whose relative IQR stayed above the threshold until the cap.
    """
    return measure_latencies(
        [model_or_path],
        input_shape,
        runtime=runtime,
        threads=threads,
        protocol=protocol,
        seed=seed,
        progress=progress,
    )[0]


def measure_latencies(
    models: Sequence[nn.Module | str | Path],
    input_shape: Sequence[int] | str = (1, 3, 224, 224),
    *,
    runtime: str = "onnxruntime",
    threads: int = 1,
    protocol: LatencyProtocol | None = None,
    seed: int = 0,
    progress: bool = False,
) -> list[LatencyResult]:
    """Measure several models under the same conditions, their runs interleaved in short blocks.

    The fair way to compare models on a machine whose load changes: a load change during the
    measurement slows every model alike instead of whichever happened to run then. Arguments are
    those of :func:`measure_latency`; the protocol applies to each model.
    """
    engine = RUNTIMES.get(runtime)()
    threads = check_threads(threads)
    shape = parse_input_shape(input_shape)
    protocol = protocol if protocol is not None else LatencyProtocol()
    with ExitStack() as stack:
        runs = [stack.enter_context(engine.session(m, shape, threads, seed)) for m in models]
        timed = sample_latencies(runs, protocol, progress=progress, desc=f"latency ({runtime})")
    return [_result(engine, runtime, threads, shape, protocol, t) for t in timed]
