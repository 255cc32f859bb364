"""The one-screen summary of a run: fronts, the chosen model, its accuracy, latency, size and speed-up."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from slimforge.runs._context import RunContext

__all__ = ["ChosenSummary", "RunSummary", "summarize"]


@dataclass(frozen=True)
class ChosenSummary:
    """One chosen model after the whole run; None where a stage has not produced the figure yet.

    The supernet's estimate is measured on the validation split, as is ``retrained_val_accuracy_pct``
    (compare those two); ``retrained_accuracy_pct`` and ``deployed_accuracy_pct`` are on the test split.

    ``speedup_vs_reference`` compares FP32 with FP32 on the same device: the reference's latency
    divided by this architecture's, the reference being the hand-designed model whose accuracy is
    closest to this one's retrained accuracy.
    """

    name: str
    arch: str
    devices: tuple[str, ...]
    estimated_accuracy_pct: float | None = None
    retrained_accuracy_pct: float | None = None
    retrained_val_accuracy_pct: float | None = None
    deployed_accuracy_pct: float | None = None
    deployed_bytes: int | None = None
    fp32_bytes: int | None = None
    device: str | None = None
    latency_ms: float | None = None
    fp32_latency_ms: float | None = None
    reference: str | None = None
    reference_accuracy_pct: float | None = None
    reference_latency_ms: float | None = None
    speedup_vs_reference: float | None = None


@dataclass(frozen=True)
class RunSummary:
    """Front size per device and the chosen models."""

    fronts: dict[str, int] = field(default_factory=dict)
    evaluations: dict[str, int] = field(default_factory=dict)
    chosen: tuple[ChosenSummary, ...] = ()
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def format(self) -> str:
        """A few lines for the terminal."""
        lines = [
            "front: " + ", ".join(f"{d} {n} architectures of {self.evaluations.get(d, 0)} evaluated"
                                  for d, n in self.fronts.items())
        ]
        for c in self.chosen:
            lines.append(f"chosen {c.name}: {c.arch}")
            acc = _fmt(c.deployed_accuracy_pct if c.deployed_accuracy_pct is not None else c.retrained_accuracy_pct, "%")
            lines.append(
                f"  test accuracy {acc} deployed, {_fmt(c.retrained_accuracy_pct, '%')} retrained; "
                f"validation: supernet estimate {_fmt(c.estimated_accuracy_pct, '%')}, "
                f"retrained {_fmt(c.retrained_val_accuracy_pct, '%')}"
            )
            if c.latency_ms is not None:
                lines.append(
                    f"  latency {c.latency_ms:.3f} ms deployed, {_fmt(c.fp32_latency_ms, ' ms', 3)} FP32 on {c.device}; "
                    f"size {_kib(c.deployed_bytes)} deployed, {_kib(c.fp32_bytes)} FP32"
                )
            if c.speedup_vs_reference is not None:
                lines.append(
                    f"  {c.speedup_vs_reference:.2f}x faster than {c.reference} "
                    f"({_fmt(c.reference_accuracy_pct, '%')}, {_fmt(c.reference_latency_ms, ' ms', 3)} FP32)"
                )
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _kib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KiB"


def _done(ctx: RunContext, stage: str) -> dict[str, Any]:
    record = ctx.store.get_stage(stage)
    return dict(record.outputs) if record is not None and record.status == "done" else {}


def _deployed_accuracy(ctx: RunContext, compressed: dict[str, Any]) -> float | None:
    if not compressed.get("report"):
        return None
    report = json.loads(ctx.path(compressed["report"]).read_text(encoding="utf-8"))
    kept = report["stages"][report["kept_stage"]]
    return kept.get("test_accuracy_pct") if kept.get("test_accuracy_pct") is not None else kept.get("val_accuracy_pct")


def _latency(row: dict[str, Any]) -> float:
    return float(row["measurement"]["latency_ms"])


def summarize(ctx: RunContext) -> RunSummary:
    """The summary of whatever the run has finished so far."""
    from slimforge.runs.layout import search_stage

    fronts, evaluations = {}, {}
    for d in ctx.config.devices:
        out = _done(ctx, search_stage(d.name))
        if out:
            fronts[d.name], evaluations[d.name] = int(out["front"]), int(out["evaluations"])
    compressed = {m["name"]: m for m in _done(ctx, "compress").get("models", [])}
    exported = {m["name"]: m for m in _done(ctx, "export").get("models", [])}
    measured = _done(ctx, "measure")
    chosen = []
    for m in _done(ctx, "retrain").get("models", []):
        values: dict[str, Any] = {
            "name": m["name"],
            "arch": m["arch"],
            "devices": tuple(m.get("devices", ())),
            "estimated_accuracy_pct": m.get("estimated_accuracy_pct"),
            "retrained_accuracy_pct": m.get("accuracy_pct"),
            "retrained_val_accuracy_pct": m.get("val_accuracy_pct"),
            "deployed_accuracy_pct": _deployed_accuracy(ctx, compressed.get(m["name"], {})),
        }
        if m["name"] in exported:
            values["deployed_bytes"] = exported[m["name"]]["bytes"]
            values["fp32_bytes"] = exported[m["name"]]["fp32_bytes"]
        rows = [r for r in measured.get("models", []) if r["name"] == m["name"]]
        if rows:
            device = rows[0]["device"]
            by_form = {r["form"]: r for r in rows if r["device"] == device}
            values["device"] = device
            if "deployable" in by_form:
                values["latency_ms"] = _latency(by_form["deployable"])
            elif "architecture" in by_form:  # a table device answers for the architecture itself
                values["latency_ms"] = _latency(by_form["architecture"])
            if "fp32" in by_form:
                values["fp32_latency_ms"] = _latency(by_form["fp32"])
            refs = [r for r in measured.get("reference", []) if r["device"] == device and r.get("accuracy_pct") is not None]
            target = values["retrained_accuracy_pct"]
            if refs and target is not None and "fp32_latency_ms" in values:
                ref = min(refs, key=lambda r: (abs(r["accuracy_pct"] - target), _latency(r)))
                values.update(
                    reference=ref["name"],
                    reference_accuracy_pct=ref["accuracy_pct"],
                    reference_latency_ms=_latency(ref),
                    speedup_vs_reference=_latency(ref) / values["fp32_latency_ms"],
                )
        chosen.append(ChosenSummary(**values))
    report = _done(ctx, "report").get("html")
    return RunSummary(fronts, evaluations, tuple(chosen), str(ctx.path(report)) if report else None)
