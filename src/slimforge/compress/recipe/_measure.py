"""Measuring one stage of a compression run: accuracy of the exported file, size, MACs, latency."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.data import DatasetSplits
from slimforge.io import JsonRecord

__all__ = ["StageResult", "measure_latencies", "measure_stage"]


@dataclass(frozen=True)
class StageResult(JsonRecord):
    """One row of the compression table: the model after a stage, measured.

    Accuracy is that of the stage's ONNX file run by ONNX Runtime (for INT8, the quantized file).
    ``onnx_bytes`` is that file's size on disk; ``packed_bytes`` the size of slimforge's packed
    weights (sparse indices, codebooks, Huffman tables; see :func:`slimforge.compress.pack_state`) where
    the stage made weights sparse or shared, else None. Latency is the median of ONNX Runtime runs
    at batch 1 under the report's ``latency_conditions``. ``decision`` is the measured gate's verdict
    (``kept``, ``dropped``: the stage made the model slower and its input went on, ``unchecked``:
    weights-only stages and runs without a gate; ``original`` for row 0) with ``decision_reason``;
    ``applied_to`` is the row whose model the stage started from.
    """

    index: int
    stage: str
    kind: str
    onnx_file: str
    val_accuracy_pct: float
    test_accuracy_pct: float | None
    num_params: int
    num_nonzero_params: int
    macs: int
    onnx_bytes: int
    packed_bytes: int | None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_stable: bool | None
    seconds: float
    within_budget: bool
    notes: tuple[str, ...]
    decision: str = "kept"
    decision_reason: str = ""
    applied_to: int | None = None


def measure_stage(
    model: nn.Module,
    *,
    index: int,
    stage: str,
    kind: str,
    out_dir: Path,
    splits: DatasetSplits,
    input_shape: Sequence[int],
    deployed_onnx: Path | None = None,
    packed_bytes: int | None = None,
    seconds: float = 0.0,
    notes: Sequence[str] = (),
    accuracy_floor_pct: float | None = None,
    onnx_name: str | None = None,
    compact: bool = False,
) -> StageResult:
    """Export (or take ``deployed_onnx``), then measure accuracy, size and MACs (latency comes later).

    With ``compact`` the file gets short tensor names first (:func:`compact_onnx`), as slimforge
    deploys it; the side-by-side rows of the tools used directly keep their files as written.
    """
    from slimforge.hardware import count_macs, export_onnx
    from slimforge.training import onnx_accuracy

    name = onnx_name or f"{index:02d}_{kind}.onnx"
    path = Path(out_dir) / "stages" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if deployed_onnx is not None:
        if Path(deployed_onnx) != path:
            shutil.copyfile(deployed_onnx, path)
    else:
        export_onnx(model, tuple(input_shape), path)
    if compact:
        from slimforge.compress.recipe._onnx_compact import compact_onnx

        compact_onnx(path)
    val = onnx_accuracy(path, splits.val)
    test = onnx_accuracy(path, splits.test) if splits.test is not None else None
    return StageResult(
        index=index,
        stage=stage,
        kind=kind,
        onnx_file=str(path.relative_to(out_dir)),
        val_accuracy_pct=val,
        test_accuracy_pct=test,
        num_params=sum(p.numel() for p in model.parameters()),
        num_nonzero_params=sum(int((p != 0).sum()) for p in model.parameters()),
        macs=count_macs(model, tuple(input_shape)),
        onnx_bytes=path.stat().st_size,
        packed_bytes=packed_bytes,
        latency_ms=None,
        latency_iqr_ms=None,
        latency_stable=None,
        seconds=seconds,
        within_budget=accuracy_floor_pct is None or val >= accuracy_floor_pct - 1e-9,
        notes=tuple(notes),
    )


def measure_latencies(
    rows: Sequence[StageResult],
    out_dir: Path,
    input_shape: Sequence[int],
    *,
    gate: Any,
    time_cap_s: float,
    rounds: int = 5,
) -> tuple[list[StageResult], str]:
    """Measure every row's ONNX file on the gate's device, in interleaved rounds.

    Each round measures every file once; a row's latency is the median of its round medians and
    its spread their inter-quartile range (:func:`slimforge.hardware.compare.compare_latencies`).
    Interleaving gives every model the same share of whatever else the machine is doing, so the
    ratios between rows hold up on a busy machine where back-to-back measurements would not.

    Returns:
        The rows with their latency filled in, and the measurement conditions on one line.
    """
    from slimforge.hardware.compare import compare_latencies

    files = [Path(out_dir) / row.onnx_file for row in rows]
    if len(files) == 1:
        files = files * 2  # the comparison needs a baseline; a lone original is its own
    cmp = compare_latencies(
        gate.device,
        files,
        tuple(input_shape),
        threads=gate.config.threads,
        rounds=rounds,
        time_cap_s=time_cap_s,
        seed=gate.seed,
    )
    measured = []
    for row, median, iqr in zip(rows, cmp.latency_ms, cmp.latency_iqr_ms):
        measured.append(
            dataclasses.replace(row, latency_ms=median, latency_iqr_ms=iqr, latency_stable=iqr <= 0.1 * median)
        )
    return measured, cmp.conditions
