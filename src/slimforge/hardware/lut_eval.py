"""How well a latency lookup table predicts whole networks, beside the measurement's own noise floor.

For ``n`` seeded sub-networks of the table's space, each network is measured twice (two separate
sessions) on the table's device under one protocol. The table's prediction is scored against the
first measurement (share within ±10 %, Spearman ρ, median absolute relative error, mean signed
error), and the second measurement is scored the same way against the first: that is the noise
floor, the best agreement any predictor could show on this machine at this time. The share of
networks whose two medians differ by less than the first measurement's IQR checks the
measurement's stability.

Both are done twice: with medians (the measurement contract's statistic) and with minima. On a
machine whose CPUs are shared, a multi-millisecond run is often pre-empted and its median grows
with the load, while a table entry (well under a millisecond) rarely is; the minima show how
close the sum of parts comes to the uncontended figure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.hardware.latency import LatencyProtocol
from slimforge.hardware.lut import LatencyTable, LutError, load_average, space_from_table
from slimforge.hardware.onnx_export import export_onnx
from slimforge.io import JsonRecord, progress_bar

__all__ = ["Agreement", "LutEvalRow", "LutEvaluation", "agreement", "evaluate_lut"]

#: protocol of a whole-network measurement in the benchmark.
EVAL_PROTOCOL = LatencyProtocol(min_time_s=1.0, time_cap_s=3.0)


@dataclass(frozen=True)
class Agreement(JsonRecord):
    """How close ``predicted`` figures are to ``reference`` ones."""

    within_10pct_share: float
    spearman_rho: float
    median_abs_rel_error: float
    mean_rel_error: float


def agreement(predicted: Sequence[float], reference: Sequence[float]) -> Agreement:
    """Share within ±10 % of the reference, Spearman ρ, median |relative error|, mean signed error."""
    from scipy.stats import spearmanr  # scipy comes with scikit-learn

    p = np.asarray(predicted, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1 or len(p) < 2 or not np.all(r > 0):
        raise InvalidInputError(
            "agreement needs two equally long lists of at least 2 figures, the reference positive"
        )
    rel = (p - r) / r
    rho = float(spearmanr(p, r).statistic) if np.ptp(p) > 0 and np.ptp(r) > 0 else float("nan")
    return Agreement(
        within_10pct_share=float(np.mean(np.abs(rel) <= 0.10)),
        spearman_rho=rho,
        median_abs_rel_error=float(np.median(np.abs(rel))),
        mean_rel_error=float(np.mean(rel)),
    )


@dataclass(frozen=True)
class LutEvalRow(JsonRecord):
    """One network: the table's predictions and its two measurements."""

    arch: str
    predicted_ms: float
    predicted_min_ms: float
    measured_ms: float
    measured_iqr_ms: float
    measured_min_ms: float
    remeasured_ms: float
    remeasured_iqr_ms: float
    remeasured_min_ms: float
    stable: bool


@dataclass(frozen=True)
class LutEvaluation(JsonRecord):
    """The benchmark's figures: ``lut*`` against the first measurement, ``noise*`` the second one."""

    space: str
    space_options: dict[str, Any]
    input_shape: tuple[int, ...]
    device: str
    threads: int
    num_models: int
    seed: int
    lut: Agreement
    noise: Agreement
    lut_min: Agreement
    noise_min: Agreement
    repeat_within_iqr_share: float
    unstable_measurements: int
    lut_unstable_entries: int
    load_average: str
    protocol: LatencyProtocol
    table_header: dict[str, str]
    rows: tuple[LutEvalRow, ...]


def evaluate_lut(
    table: LatencyTable,
    *,
    sample: int = 100,
    seed: int = 0,
    device: Any = None,
    protocol: LatencyProtocol | None = None,
    chunk: int = 10,
    progress: bool = False,
) -> LutEvaluation:
    """Score ``table`` on ``sample`` seeded networks of its space, measured twice on its device.

    Args:
        table: the lookup table.
        sample: number of networks (drawn with ``space.sample`` from ``numpy.random.default_rng(seed)``).
        seed: the networks' seed.
        device: where to measure; the table's own device (``# device:``) when None. A different
            device is refused: figures from other conditions are never compared.
        protocol: whole-network protocol; :data:`EVAL_PROTOCOL` when None.
        chunk: networks measured in one interleaved call (each call holds their sessions).
        progress: progress over the networks on stderr (a bar on a terminal, plain lines elsewhere).
    """

    from slimforge.hardware.devices import Device, get_device

    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 2:
        raise InvalidInputError(f"sample must be an integer >= 2, got {sample!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidInputError(f"chunk must be a positive integer, got {chunk!r}")
    dev = device if isinstance(device, Device) else get_device(device or table.header["device"])
    if dev.spec != table.header["device"]:
        raise LutError(
            f"the table was measured on {table.header['device']}, not on {dev.spec}; build one there first"
        )
    threads = int(table.header["threads"])
    shape = parse_input_shape(table.header["input_shape"])
    num_classes = int(table.header["num_classes"])
    protocol = protocol if protocol is not None else EVAL_PROTOCOL
    space = space_from_table(table)
    if space.num_genes != table.num_genes:
        raise LutError(
            f"the table has {table.num_genes} layers but space {space!r} has {space.num_genes} genes"
        )
    rng = np.random.default_rng(seed)
    genomes = [space.sample(rng) for _ in range(sample)]
    load_before = load_average()
    first, second = [], []
    with progress_bar(sample, "LUT eval", "net", enabled=progress) as bar:
        for start in range(0, sample, chunk):
            nets = [space.build(g, num_classes) for g in genomes[start : start + chunk]]
            with tempfile.TemporaryDirectory(prefix="slimforge-luteval-") as tmp:
                if dev.runtime == "onnxruntime":  # export once; both measurements load the same file
                    nets = [export_onnx(n, shape, Path(tmp) / f"net{i}.onnx") for i, n in enumerate(nets)]
                for out in (first, second):  # two separate measurements, each in fresh sessions
                    out += dev.measure_many(
                        nets, shape, threads=threads, protocol=protocol, seed=seed, energy=False
                    )
            bar.update(len(nets))
    rows = []
    for g, a, b in zip(genomes, first, second):
        assert a.latency is not None and b.latency is not None
        rows.append(
            LutEvalRow(
                arch=space.to_string(g),
                predicted_ms=table.predict(g),
                predicted_min_ms=table.predict(g, "min"),
                measured_ms=a.latency_ms,
                measured_iqr_ms=a.latency.latency_ms_iqr,
                measured_min_ms=a.latency.latency_ms_min,
                remeasured_ms=b.latency_ms,
                remeasured_iqr_ms=b.latency.latency_ms_iqr,
                remeasured_min_ms=b.latency.latency_ms_min,
                stable=bool(a.stable and b.stable),
            )
        )

    def col(name: str) -> np.ndarray:
        return np.asarray([getattr(r, name) for r in rows])

    return LutEvaluation(
        space=table.space,
        space_options=table.space_options,
        input_shape=shape,
        device=dev.spec,
        threads=threads,
        num_models=sample,
        seed=seed,
        lut=agreement(col("predicted_ms"), col("measured_ms")),
        noise=agreement(col("remeasured_ms"), col("measured_ms")),
        lut_min=agreement(col("predicted_min_ms"), col("measured_min_ms")),
        noise_min=agreement(col("remeasured_min_ms"), col("measured_min_ms")),
        repeat_within_iqr_share=float(
            np.mean(np.abs(col("remeasured_ms") - col("measured_ms")) < col("measured_iqr_ms"))
        ),
        unstable_measurements=int(sum(not m.stable for m in first + second)),
        lut_unstable_entries=table.num_unstable,
        load_average=(
            f"{load_before} before, {load_average()} after (1/5/15-minute, {os.cpu_count()} logical cores)"
        ),
        protocol=protocol,
        table_header=dict(table.header),
        rows=tuple(rows),
    )
