"""The estimator section: the run's audit of its accuracy estimators on the calibration set."""

from __future__ import annotations

from typing import Any

from slimforge.report._charts import COLORS, point, series, xy_chart
from slimforge.report._html import Html, code, esc, fmt, table
from slimforge.report._run import RunData
from slimforge.report._section import Figure, Section, chart_box, from_stage, missing_section

__all__ = ["estimator_section"]

_UNITS = {"supernet": "supernet accuracy (%)", "zero_cost": "zero-cost ensemble score",
          "num_params": "log10 #parameters", "blend": "blend's prediction (%), leave-one-out"}


def _interval(low: Any, high: Any) -> str:
    return "-" if low is None or high is None else f"{low:+.2f} to {high:+.2f}"


def _chart(audit: dict[str, Any], name: str) -> dict[str, Any]:
    est = next(e for e in audit["estimators"] if e["name"] == name)
    pts = [point(s, t, [a, f"{name} {fmt(s)}, trained {fmt(t)} %"])
           for s, t, a in zip(est["scores"], audit["truth_pct"], audit["archs"] or [""] * len(est["scores"]))]
    return xy_chart(f"{name} vs trained accuracy (calibration set)", _UNITS.get(name, name),
                    "trained accuracy (%)", [series(name, "dots", COLORS["chosen"], pts)])


@from_stage("calibrate", "estimator", "Estimator audit")
def estimator_section(run: RunData, outputs: dict[str, Any], key: str, title: str) -> Section:
    """Each estimator's rank correlation with the calibration set's trained accuracy, and the choice."""
    audit = outputs.get("audit")
    if not audit:
        return missing_section(key, title, f"no audit: {outputs.get('skipped') or 'skipped'}")
    rows = [
        [e["name"] + (" (chosen)" if e["name"] == audit["chosen"] else ""), e["kendall_tau"],
         _interval(e["tau_low"], e["tau_high"]), e["spearman_rho"], _interval(e["rho_low"], e["rho_high"]),
         e["num_archs"], e.get("how") or "-"]
        for e in audit["estimators"]
    ]
    parts = [
        f"<p>The search used <strong>{esc(audit['chosen'])}</strong>: {esc(audit['reason'])}.</p>",
        table(["estimator", "Kendall τ", "95% interval", "Spearman ρ", "95% interval", "archs", "scores"], rows),
    ]
    if audit.get("warning"):
        parts.insert(0, f'<div class="regressions"><p><strong>Warning:</strong> {esc(audit["warning"])}</p></div>')
    charts, figures = {}, []
    names = [audit["chosen"]] + (["supernet"] if audit["chosen"] != "supernet" else [])
    for name in names:
        if any(e["name"] == name for e in audit["estimators"]):
            cid = f"estimator-{name}"
            charts[cid] = _chart(audit, name)
            figures.append(Figure(f"estimator_{name}.png", (charts[cid],)))
            parts.append(chart_box(cid, f"estimator_{name}.png"))
    archs = [[i, code(a), t] for i, (a, t) in enumerate(zip(audit["archs"], audit["truth_pct"]), start=1)]
    parts.append(f"<h3>Calibration set ({esc(audit['truth_source'])})</h3>")
    parts.append(table(["#", "architecture", "accuracy %"], archs))
    parts.append('<p class="note">Intervals: 95% percentile bootstrap over the calibration architectures '
                 "(resampled with replacement). The blend is a ridge regression on the standardised scores, "
                 "judged by leave-one-out predictions so it is never scored on the architectures it was fitted to."
                 "</p>")
    return Section(key=key, title=title, body=Html("".join(parts)), charts=charts, figures=tuple(figures))
