"""The search sections, one pair per device: the interactive Pareto front and its evolution."""

from __future__ import annotations

from typing import Any

from slimforge.report._charts import COLORS, front_chart, front_xy, point, safe_name, series, xy_chart
from slimforge.report._evolution import REFERENCE, hypervolume_curve, prefix_fronts, snapshot_counts
from slimforge.report._html import Html, code, esc, fmt, table
from slimforge.report._run import RunData, SectionMissing
from slimforge.report._search import SearchView, load_search
from slimforge.report._section import Figure, Section, chart_box, missing_section
from slimforge.search import Evaluation

__all__ = ["search_sections"]

# A longer front table starts folded, so the plots below it stay in sight.
_OPEN_FRONT = 20
_SUMMARY = (
    ("algorithm", "algorithm"),
    ("seed", "seed"),
    ("budget", "budget"),
    ("evaluations", "evaluations"),
    ("feasible", "feasible"),
    ("front", "front size"),
    ("stop_reason", "stopped"),
    ("wall_s", "wall time (s)"),
    ("spec", "device spec"),
    ("accuracy_source", "accuracy from"),
    ("cost_source", "cost from"),
)


def search_sections(run: RunData) -> list[Section]:
    """Front and evolution sections for every device searched (or say that none was)."""
    devices = run.devices()
    if not devices:
        reason = "no search has run yet (no 'search:<device>' stage recorded)"
        return [
            missing_section("front", "Pareto front", reason),
            missing_section("evolution", "Front evolution", reason),
        ]
    out = []
    for device in devices:
        try:
            view = load_search(run, device)
        except SectionMissing as exc:
            out.append(missing_section(f"front:{device}", f"Pareto front on {device}", str(exc)))
            out.append(missing_section(f"evolution:{device}", f"Front evolution on {device}", str(exc)))
            continue
        out.append(_front(view))
        out.append(_evolution(view))
    return out


def _front(view: SearchView) -> Section:
    name = safe_name(view.device)
    chart_id, png = f"front-{name}", f"front_{name}.png"
    spec = front_chart(view)
    summary = [(label, view.summary[k]) for k, label in _SUMMARY if k in view.summary]
    summary.append(("objectives (minimised)", ", ".join(view.objectives)))
    summary.append(("constraints", ", ".join(view.constraints) or "none"))
    parts = [f'<p class="missing">{esc(view.partial)}</p>'] if view.partial else []
    parts.append(table(["", ""], summary, cls="kv"))
    parts.append(chart_box(chart_id, png))
    parts.append(
        '<p class="note">Every evaluated architecture; grey: infeasible (violates a constraint); '
        "orange: the feasible non-dominated front; red diamonds: the models the select stage chose. "
        "Hover a point for its architecture and metrics; pick the axes above the plot.</p>"
    )
    rows = [
        [
            i,
            code(e.arch),
            *[e.objectives.get(k) for k in view.objectives],
            ", ".join(view.chosen.get(e.arch, [])),
        ]
        for i, e in enumerate(view.front, start=1)
    ]
    fold = " open" if len(view.front) <= _OPEN_FRONT else ""
    parts.append(
        f"<details{fold}><summary>The front ({len(view.front)} architectures)</summary>"
        f"{table(['#', 'architecture', *view.objectives, 'chosen as'], rows)}</details>"
    )
    return Section(
        key=f"front:{view.device}",
        title=f"Pareto front on {view.device}",
        body=Html("".join(parts)),
        charts={chart_id: spec},
        figures=(Figure(png, (front_xy(spec),)),),
    )


def _objective_point(e: Evaluation, x_name: str, y_name: str) -> dict[str, Any]:
    x, y = e.objectives[x_name], e.objectives[y_name]
    return point(x, y, [e.arch, f"{y_name} {fmt(y)}, {x_name} {fmt(x)}"])


def _evolution(view: SearchView) -> Section:
    key, title = f"evolution:{view.device}", f"Front evolution on {view.device}"
    curve = hypervolume_curve(view.evaluations)
    if curve is None:
        return missing_section(key, title, f"no feasible evaluation on {view.device} yet")
    name = safe_name(view.device)
    charts = {}
    if len(view.objectives) >= 2:
        x_name, y_name = view.objectives[1], view.objectives[0]
        snaps = prefix_fronts(view.evaluations, snapshot_counts(len(view.evaluations)))
        palette = COLORS["snapshots"]
        # With more than two objectives a front is no staircase in two of them: dots only.
        style = "front" if len(view.objectives) == 2 else "dots"
        all_series = [
            series(
                f"first {n} evaluations",
                style,
                palette[min(len(palette) - 1, len(palette) - len(snaps) + i)],
                [_objective_point(e, x_name, y_name) for e in front],
            )
            for i, (n, front) in enumerate(snaps)
        ]
        chart_title = f"Front of the first n evaluations on {view.device}"
        charts[f"evolution-{name}"] = xy_chart(chart_title, x_name, y_name, all_series)
    hv_points = [
        point(n, hv, [f"{n} evaluations", f"hypervolume {fmt(hv)}"])
        for n, hv in zip(curve.counts, curve.hypervolume, strict=True)
    ]
    charts[f"hypervolume-{name}"] = xy_chart(
        f"Hypervolume on {view.device}",
        "evaluations",
        "hypervolume (normalised)",
        [series("feasible front", "line", COLORS["line"], hv_points)],
    )
    png = f"evolution_{name}.png"
    best = REFERENCE ** len(view.objectives)
    body = "".join(chart_box(cid) for cid in charts) + (
        f'<p class="note">Fronts of the first n evaluations in the order the search made them, and the '
        f"hypervolume of the feasible front against evaluations (objectives min-max normalised over every "
        f"feasible evaluation, reference point {REFERENCE:g} in each; at most {best:.4g}). "
        f'<span class="png">PNG: figures/{esc(png)}</span></p>'
    )
    return Section(
        key=key, title=title, body=Html(body), charts=charts, figures=(Figure(png, tuple(charts.values())),)
    )
