"""Fill the run's :class:`~slimforge.report.RunSummary` from the stages' typed outputs.

Every latency in it comes from the ``measure`` stage's single interleaved session per device, and
every comparison is deployed against deployed: the chosen model's shipped file against its own
FP32 export and against the reference of closest accuracy in the form that reference would ship
(its INT8 export when that is faster and within the accuracy budget, else FP32).
"""

from __future__ import annotations

from typing import Any

from slimforge.report import ChosenSummary, LatencyFigure, ReferenceFigure, RunSummary
from slimforge.runs._context import RunContext
from slimforge.runs.layout import search_stage

__all__ = ["summarize"]


def summarize(ctx: RunContext) -> RunSummary:
    """The summary of whatever the run has finished so far."""
    r = ctx.results
    fronts, evaluations = {}, {}
    for d in ctx.config.devices:
        out = r.get(search_stage(d.name))
        if out is not None:
            fronts[d.name], evaluations[d.name] = out.front, out.evaluations
    chosen = [_chosen(ctx, m) for m in getattr(r.get("retrain"), "models", ())]
    report = r.get("report")
    warnings = list(ctx.warnings)
    audit = getattr(r.get("calibrate"), "audit", None)
    if audit is not None and audit.warning:
        warnings.append(audit.warning)
    return RunSummary(
        fronts=fronts,
        evaluations=evaluations,
        chosen=tuple(chosen),
        warnings=tuple(warnings),
        report=str(ctx.path(report.html)) if report is not None else None,
    )


def _estimator(ctx: RunContext) -> str:
    calibrate = ctx.results.get("calibrate")
    audit = getattr(calibrate, "audit", None)
    if audit is None:
        return "supernet (not audited)"
    tau = audit.score(audit.chosen).kendall_tau
    return f"{audit.chosen} (audited: Kendall tau {tau:+.2f} on {len(audit.truth_pct)} architectures)" if tau is not None \
        else f"{audit.chosen} (audited)"


def _chosen(ctx: RunContext, m: Any) -> ChosenSummary:
    r = ctx.results
    source = ctx.config.accuracy.source
    values: dict[str, Any] = {
        "name": m.name,
        "arch": m.arch,
        "devices": tuple(m.devices),
        "estimator": _estimator(ctx) if source == "supernet" else source,
        "estimated_accuracy_pct": m.estimated_accuracy_pct,
        "retrained_accuracy_pct": m.accuracy_pct,
        "retrained_val_accuracy_pct": m.val_accuracy_pct,
        "accuracy_split": m.accuracy_split,
    }
    regressions: list[str] = []
    compressed = next((c for c in getattr(r.get("compress"), "models", ()) if c.name == m.name), None)
    if compressed is not None:
        values["compression"] = compressed.message or None
        values["dropped_stages"] = compressed.dropped
        if not compressed.budget_met:
            regressions.append(f"accuracy budget missed: {compressed.message}")
    exported = next((e for e in getattr(r.get("export"), "models", ()) if e.name == m.name), None)
    if exported is not None:
        values.update(deployed_accuracy_pct=exported.accuracy_pct, precision=exported.precision,
                      deployed_bytes=exported.bytes, fp32_bytes=exported.fp32_bytes)
        regressions += [f"the {f.format} {f.precision} export was not shipped: {f.note}"
                        for f in exported.formats if f.path is None]
    measured = r.get("measure")
    device = m.devices[0] if m.devices else None
    session = measured.on(device) if measured is not None and device is not None else None
    if session is not None:
        _latency(ctx, m, session, values, regressions)
    values["regressions"] = tuple(regressions)
    return ChosenSummary(**values)


def _latency(ctx: RunContext, m: Any, session: Any, values: dict[str, Any], regressions: list[str]) -> None:
    """Deployed vs own FP32, deployed vs the reference's deployed form, and the search's constraints."""
    tolerance = ctx.config.measure.tolerance
    deployed = session.find(m.name, "deployed")
    if deployed is None:
        arch = session.find(m.name, "architecture")
        if arch is not None:
            f = session.files[arch]
            values["latency"] = LatencyFigure(session.spec, session.conditions, f.latency_ms, None, None,
                                              source="device table")
        return
    fp32 = session.find(m.name, "fp32")
    ratio = session.ratio(deployed, fp32) if fp32 is not None else (None, None, None)
    dep = session.files[deployed]
    values["latency"] = LatencyFigure(
        device=session.spec,
        conditions=session.conditions,
        deployed_ms=dep.latency_ms,
        fp32_ms=session.files[fp32].latency_ms if fp32 is not None else None,
        deployed_vs_fp32=ratio[0],
        ratio_q1=ratio[1],
        ratio_q3=ratio[2],
    )
    if ratio[0] is not None and ratio[0] > 1 + tolerance:
        regressions.append(
            f"the deployed {values.get('precision') or ''} model is SLOWER than its own FP32 export: "
            f"{dep.latency_ms:.3f} ms vs {session.files[fp32].latency_ms:.3f} ms ({ratio[0]:.2f}x) on {session.spec}"
        )
    for text in ctx.config.search.constraints:
        from slimforge.search.constraint import Constraint

        c = Constraint.parse(text)
        if c.metric == "latency_ms" and c.violation(dep.latency_ms) > 0:
            regressions.append(f"misses the search constraint {text}: deployed {dep.latency_ms:.3f} ms on {session.spec}")
    target = values.get("deployed_accuracy_pct")
    ref = _reference(ctx, session, target)
    if ref is None:
        return
    index, figure = ref
    speedup = session.ratio(index, deployed)[0]
    values.update(reference=figure, speedup_vs_reference=speedup)
    if speedup < 1 / (1 + tolerance):
        regressions.append(
            f"SLOWER than the reference of closest accuracy, {figure.name} ({figure.form}): "
            f"{dep.latency_ms:.3f} ms vs {figure.latency_ms:.3f} ms, deployed vs deployed"
        )


def _reference(ctx: RunContext, session: Any, target: float | None) -> tuple[int, ReferenceFigure] | None:
    """The reference of closest deployed accuracy, in its deployed form (faster form within budget)."""
    if target is None:
        return None
    budget = ctx.config.compress.max_accuracy_drop
    forms: dict[str, list[int]] = {}
    for i, f in enumerate(session.files):
        if f.form in ("fp32", "int8") and f.accuracy_pct is not None and f.name.startswith("ref-"):
            forms.setdefault(f.name, []).append(i)
    candidates = []
    for indices in forms.values():
        fp32 = next((i for i in indices if session.files[i].form == "fp32"), indices[0])
        floor = session.files[fp32].accuracy_pct - (budget if budget is not None else float("inf"))
        allowed = [i for i in indices if session.files[i].accuracy_pct >= floor]
        candidates.append(min(allowed, key=lambda i: session.files[i].latency_ms))
    if not candidates:
        return None
    best = min(candidates, key=lambda i: (abs(session.files[i].accuracy_pct - target), session.files[i].latency_ms))
    f = session.files[best]
    return best, ReferenceFigure(f.name, f.form, f.accuracy_pct, f.latency_ms, f.bytes)
