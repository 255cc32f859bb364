"""The report's headline: the run's summary (the same record as the terminal summary and ``--json``)."""

from __future__ import annotations

from typing import Any

from slimforge.report._html import Html, code, esc, fmt, table
from slimforge.report._run import RunData
from slimforge.report._section import Section, missing_section
from slimforge.report._summary import RunSummary

__all__ = ["headline_section"]


def _latency(c: Any) -> str:
    lat = c.latency
    if lat is None:
        return "-"
    text = f"{lat.deployed_ms:.3f} ms deployed"
    if lat.fp32_ms is not None and lat.deployed_vs_fp32 is not None:
        word = "SLOWER than" if lat.deployed_vs_fp32 > 1 else "vs"
        text += f", {word} {lat.fp32_ms:.3f} ms for its own FP32 export ({lat.deployed_vs_fp32:.2f}x)"
    return text + f" on {lat.device}"


def _reference(c: Any) -> str:
    if c.reference is None or c.speedup_vs_reference is None:
        return "-"
    r, s = c.reference, c.speedup_vs_reference
    word = f"{s:.2f}x faster" if s >= 1 else f"{1 / s:.2f}x SLOWER"
    return f"{word} than {r.name} as {r.form} ({fmt(r.accuracy_pct)} %, {r.latency_ms:.3f} ms), deployed vs deployed"


def headline_section(run: RunData) -> Section:
    """What the run delivers, in one screen: each chosen model's figures and every regression."""
    key, title = "headline", "Summary"
    if run.summary is None:
        return missing_section(key, title, "no summary yet: the run has not finished a stage")
    summary = RunSummary.from_dict(run.summary)
    if not summary.chosen:
        fronts = ", ".join(f"{d}: {n} on the front of {summary.evaluations.get(d, 0)}" for d, n in summary.fronts.items())
        return missing_section(key, title, f"no model retrained yet{'; ' + fronts if fronts else ''}")
    parts = []
    for c in summary.chosen:
        acc = c.deployed_accuracy_pct if c.deployed_accuracy_pct is not None else c.retrained_accuracy_pct
        rows = [
            ("architecture", code(c.arch)),
            ("devices", ", ".join(c.devices)),
            (f"{c.accuracy_split} accuracy", f"{fmt(acc)} % deployed ({c.precision or '?'}), "
                                             f"{fmt(c.retrained_accuracy_pct)} % retrained"),
            ("estimate", f"{fmt(c.estimated_accuracy_pct)} % by {c.estimator or '?'} (validation; retrained "
                         f"{fmt(c.retrained_val_accuracy_pct)} %)"),
            ("latency", _latency(c)),
            ("conditions", c.latency.conditions if c.latency is not None else "-"),
            ("size", f"{fmt(c.deployed_bytes)} B deployed, {fmt(c.fp32_bytes)} B FP32"),
            ("vs reference", _reference(c)),
            ("compression", c.compression or "-"),
        ]
        if c.dropped_stages:
            rows.append(("dropped by the gate", ", ".join(c.dropped_stages) + " (slower than their input)"))
        parts.append(f"<h3>{esc(c.name)}</h3>" + table(["", ""], rows, cls="kv"))
    problems = summary.regressions
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems)
        parts.insert(0, f'<div class="regressions"><p><strong>{len(problems)} regression(s) or missed '
                        f"budget(s)</strong></p><ul>{items}</ul></div>")
    else:
        parts.insert(0, '<p class="ok">No regression: every deployed model is as fast as its own FP32 export, '
                        "within its accuracy budget and the search's latency constraints.</p>")
    if summary.fronts:
        fronts = "; ".join(f"{d}: {n} architectures on the front of {summary.evaluations.get(d, 0)} evaluated"
                           for d, n in summary.fronts.items())
        parts.append(f'<p class="note">{esc(fronts)}. Every latency above was measured in this run, the files of '
                     "one device interleaved in one session; ratios are medians of per-round ratios.</p>")
    return Section(key=key, title=title, body=Html("".join(parts)))
