"""The human table of a compression run (``compression.txt``), ratios to the original."""

from __future__ import annotations

from collections.abc import Sequence

from slimforge.compress.recipe._measure import StageResult
from slimforge.io import render_table

__all__ = ["format_report", "format_sensitivity"]


def _count(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:g}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for scale, suffix in ((2**20, "MiB"), (2**10, "KiB")):
        if value >= scale:
            return f"{value / scale:.1f} {suffix}"
    return f"{int(value)} B"


def _rows(rows: Sequence[StageResult], base: StageResult, label: str = "") -> list[list[str]]:
    out = []
    for r in rows:
        test = "-" if r.test_accuracy_pct is None else f"{r.test_accuracy_pct:.2f}"
        if r.test_accuracy_pct is not None and base.test_accuracy_pct is not None:
            delta = f"{r.test_accuracy_pct - base.test_accuracy_pct:+.2f}"
        else:
            delta = f"{r.val_accuracy_pct - base.val_accuracy_pct:+.2f}"
        out.append(
            [
                label or str(r.index),
                r.stage,
                f"{r.val_accuracy_pct:.2f}",
                test,
                delta,
                _count(r.num_params),
                _count(r.macs),
                f"{base.macs / r.macs:.2f}x" if r.macs else "-",
                _bytes(r.onnx_bytes),
                f"{base.onnx_bytes / r.onnx_bytes:.2f}x",
                _bytes(r.packed_bytes),
                f"{r.latency_ms:.3f}" + ("" if r.latency_stable else "~"),
                f"{base.latency_ms / r.latency_ms:.2f}x",
                "" if r.within_budget else "over",
                {"dropped": "DROPPED", "kept": "kept", "unchecked": "-", "original": ""}.get(r.decision, r.decision),
            ]
        )
    return out


def format_report(report) -> str:
    """Aligned table: accuracy, params, MACs, bytes on disk, latency per stage, with ratios to the original."""
    base = report.stages[0]
    headers = [
        "#",
        "stage",
        "val%",
        "test%",
        "dtest",
        "params",
        "MACs",
        "MACs/",
        "ONNX",
        "size/",
        "packed",
        "ms",
        "speed",
        "budget",
        "gate",
    ]
    right = [True, False] + [True] * 11 + [False, False]
    rows = _rows(report.stages, base)
    if report.comparisons:
        rows += _rows(report.comparisons, base, label="vs")
    out = [
        f"model {report.model} on {report.data}, input {'x'.join(map(str, report.input_shape))}; recipe {report.recipe}",
        f"finetune {report.finetune_epochs} epochs per stage (lr {report.finetune_lr:g}); "
        + (
            f"budget: at most {report.max_accuracy_drop_pct:g} points below the original's validation accuracy"
            if report.max_accuracy_drop_pct is not None
            else "no accuracy budget"
        ),
        "",
        render_table(headers, rows, right),
        "",
        f"result: {report.message}; kept stage {report.kept_stage} -> model.onnx, model/",
        f"measured gate: objective {report.gate.objective} on {report.gate.device} ({report.gate.threads} "
        f"thread(s), tolerance {report.gate.tolerance:.0%}): a stage that changes the graph is timed against "
        "its input and dropped when slower",
    ]
    packed = [r for r in report.stages if r.packed_bytes is not None]
    if base.packed_bytes and len(packed) > 1:
        out.append("")
        out.append(
            "Deep Compression storage, size / original (survey format; packed = sparse indices + codebooks"
            " + Huffman tables, real bytes):"
        )
        for r in packed[1:]:
            out.append(
                f"  {r.stage:<32} {r.packed_bytes / base.packed_bytes:.3f}  ({r.packed_bytes:,} B of "
                f"{base.packed_bytes:,} B)"
            )
    out.append("")
    out.append(
        "columns: dtest = test accuracy change (points); MACs/, size/, speed = original / this stage "
        "(higher is better); ONNX = bytes of the stage's .onnx on disk (short tensor names; the vs rows as the tools wrote them); ms = median latency (~ = unstable)"
    )
    out.append(f"latency: {report.latency_conditions}")
    out.append(f"note: {report.macs_note}")
    for r in [*report.stages, *report.comparisons]:
        if r.decision in ("kept", "dropped") and r.decision_reason:
            out.append(f"gate ({r.stage}): {r.decision}: {r.decision_reason}")
        for n in r.notes:
            out.append(f"note ({r.stage}): {n}")
    return "\n".join(out)


def format_sensitivity(rows: Sequence, title: str) -> str:
    """The per-layer INT8 sensitivity report, most sensitive first."""
    table = render_table(
        ["#", "layer", "params", "acc drop", "output KL"],
        [
            [str(i), r.layer, _count(r.num_params), f"{r.accuracy_drop_pct:+.2f}", f"{r.output_kl:.3g}"]
            for i, r in enumerate(rows, start=1)
        ],
        [True, False, True, True, True],
    )
    return "\n".join(
        [
            f"INT8 sensitivity of {title}: each layer alone with int8 per-channel weights and uint8 inputs",
            "",
            table,
            "",
            "acc drop = top-1 points lost (positive is worse); output KL = KL(float || quantized) of the outputs",
        ]
    )
