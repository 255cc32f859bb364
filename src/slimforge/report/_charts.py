"""Chart specifications: plain JSON that the page's script draws as SVG and matplotlib as PNG.

An ``xy`` chart is a list of series of points; a ``front`` chart is the records of one search, from
which the page builds an ``xy`` chart for whichever two metrics the reader picks (and
:func:`front_xy` builds the default one for the PNG). Keeping one spec for both outputs keeps the
HTML and the PNG figures the same picture.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

from slimforge.report._search import SearchView

__all__ = [
    "COLORS",
    "EVALUATION_FIELD",
    "front_chart",
    "front_xy",
    "point",
    "safe_name",
    "series",
    "xy_chart",
]

COLORS = {
    "feasible": "#4c78a8",
    "infeasible": "#bbbbbb",
    "front": "#f58518",
    "chosen": "#e45756",
    "reference": "#54a24b",
    "line": "#4c78a8",
    # light to dark: early fronts pale, the final front darkest
    "snapshots": ("#c6dbef", "#6baed6", "#2171b5", "#08306b"),
    "cycle": ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"),
}
#: the pseudo-metric "position of the evaluation in the search" offered as a plot axis.
EVALUATION_FIELD = "evaluation #"
STYLES = ("dots", "front", "line", "marks")


def safe_name(text: str) -> str:
    """``text`` usable as a file name and an element id (a short hash keeps altered names distinct)."""
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text) and not text.startswith("."):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"
    return f"{cleaned}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"


def point(
    x: float | None, y: float | None, tip: Sequence[str] = (), label: str | None = None
) -> dict[str, Any]:
    """One point: coordinates, the tooltip's lines and an optional label drawn beside it."""
    return {"x": x, "y": y, "tip": list(tip), "label": label}


def series(
    name: str, style: str, color: str, points: Sequence[dict[str, Any]], *, faded: bool = False
) -> dict[str, Any]:
    """A named set of points drawn in one ``style``: dots, front (staircase), line or marks (labelled)."""
    assert style in STYLES, style
    return {"name": name, "style": style, "color": color, "faded": faded, "points": list(points)}


def xy_chart(
    title: str, xlabel: str, ylabel: str, all_series: Sequence[dict[str, Any]], *, diagonal: bool = False
) -> dict[str, Any]:
    """An xy chart; ``diagonal`` draws y = x (estimated against true values)."""
    return {
        "kind": "xy",
        "title": title,
        "xlabel": xlabel,
        "ylabel": ylabel,
        "diagonal": diagonal,
        "series": list(all_series),
    }


def front_chart(view: SearchView) -> dict[str, Any]:
    """The interactive front of one search: every evaluation, its metrics, front and chosen flags."""
    fields = list(view.objectives)
    for e in view.evaluations:
        fields += [k for k in e.metrics if k not in fields]
    fields.append(EVALUATION_FIELD)
    on_front = {e.genome for e in view.front}
    records = []
    for n, e in enumerate(view.evaluations, start=1):
        values = {**e.metrics, **e.objectives, EVALUATION_FIELD: n}
        records.append(
            {
                "arch": e.arch,
                "v": [values.get(f) for f in fields],
                "feasible": e.feasible,
                "violation": e.violation,
                "front": e.genome in on_front,
                "chosen": view.chosen.get(e.arch, []),
                "c": dict(e.constraints),
            }
        )
    objectives = list(view.objectives)
    x = objectives[1] if len(objectives) > 1 else EVALUATION_FIELD
    return {
        "kind": "front",
        "title": f"Pareto front on {view.device}",
        "fields": fields,
        "objectives": objectives,
        "x": x,
        "y": objectives[0],
        "colors": {k: COLORS[k] for k in ("feasible", "infeasible", "front", "chosen")},
        "records": records,
    }


def front_xy(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``xy`` chart a ``front`` spec shows on its default axes (what the page draws first)."""
    fields = spec["fields"]
    ix, iy = fields.index(spec["x"]), fields.index(spec["y"])
    staircase = sorted([spec["x"], spec["y"]]) == sorted(spec["objectives"])
    groups: dict[str, list[dict[str, Any]]] = {"infeasible": [], "feasible": [], "front": [], "chosen": []}
    for r in spec["records"]:
        x, y = r["v"][ix], r["v"][iy]
        if not _finite(x) or not _finite(y):
            continue
        group = "infeasible" if not r["feasible"] else "front" if r["front"] else "feasible"
        groups[group].append(point(x, y, [r["arch"]]))
        if r["chosen"]:
            groups["chosen"].append(point(x, y, [r["arch"]], label=", ".join(r["chosen"])))
    colors = spec["colors"]
    return xy_chart(
        spec["title"],
        spec["x"],
        spec["y"],
        [
            series("infeasible", "dots", colors["infeasible"], groups["infeasible"], faded=True),
            series("feasible", "dots", colors["feasible"], groups["feasible"]),
            series("front", "front" if staircase else "dots", colors["front"], groups["front"]),
            series("chosen", "marks", colors["chosen"], groups["chosen"]),
        ],
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
