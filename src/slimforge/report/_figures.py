"""PNG figures with matplotlib (Agg, no pyplot state): chart specs, and several fronts in one plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.report._charts import COLORS, point, series, xy_chart

__all__ = ["check_matplotlib", "plot_fronts", "save_png"]

_PANEL_IN = (6.4, 4.4)
_DPI = 150


def check_matplotlib() -> None:
    """Raise an actionable error when matplotlib, needed for PNG figures only, is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "PNG figures need matplotlib; install it (pip install matplotlib) or pass --no-png (png=False)"
        ) from None


def save_png(charts: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Draw ``xy`` chart specs side by side into one PNG file; returns its path."""
    check_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(_PANEL_IN[0] * len(charts), _PANEL_IN[1]), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, chart in zip(fig.subplots(1, len(charts), squeeze=False)[0], charts, strict=True):
        _draw(ax, chart)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def plot_fronts(
    fronts: Mapping[str, Any],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    *,
    points: Mapping[str, tuple[float, float]] | None = None,
    scatter: Mapping[str, Any] | None = None,
    title: str = "",
) -> Path:
    """Several Pareto fronts (both axes minimised) and labelled single points in one PNG.

    Args:
        fronts: label -> ``(n, 2)`` array of ``(x, y)``; each is drawn as markers joined by its
            attainment staircase (sorted by x).
        path: the PNG file to write.
        xlabel, ylabel: axis labels (name the units).
        points: label -> ``(x, y)``, e.g. hand-designed models, drawn as labelled diamonds.
        scatter: label -> ``(n, 2)`` array drawn as small faint dots behind the fronts (all
            evaluated candidates, say).
        title: the figure title.

    Returns:
        ``path``.
    """
    all_series = []
    for i, (label, xy) in enumerate((scatter or {}).items()):
        color = COLORS["feasible"] if i == 0 else COLORS["infeasible"]
        all_series.append(
            series(label, "dots", color, [point(x, y) for x, y in _pairs(xy, label)], faded=True)
        )
    for i, (label, xy) in enumerate(fronts.items()):
        color = COLORS["cycle"][i % len(COLORS["cycle"])]
        all_series.append(series(label, "front", color, [point(x, y) for x, y in _pairs(xy, label)]))
    for i, (label, (x, y)) in enumerate((points or {}).items()):
        color = COLORS["cycle"][(len(fronts) + i) % len(COLORS["cycle"])]
        all_series.append(series(label, "marks", color, [point(float(x), float(y), label=label)]))
    return save_png([xy_chart(title, xlabel, ylabel, all_series)], path)


def _pairs(xy: Any, label: str) -> np.ndarray:
    arr = np.asarray(xy, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInputError(
            f"series {label!r} must be an (n, 2) array of (x, y) rows, got shape {arr.shape}"
        )
    return arr


def _draw(ax: Any, chart: dict[str, Any]) -> None:
    drawn = False
    for s in chart["series"]:
        pts = [(p["x"], p["y"], p.get("label")) for p in s["points"] if _finite(p["x"]) and _finite(p["y"])]
        if not pts:
            continue
        drawn = True
        xs = np.array([p[0] for p in pts])
        ys = np.array([p[1] for p in pts])
        color, alpha = s["color"], 0.5 if s.get("faded") else 0.9
        if s["style"] == "dots":
            ax.scatter(xs, ys, s=12, color=color, alpha=alpha, label=_plain(s["name"]), linewidths=0)
        elif s["style"] == "front":
            order = np.argsort(xs, kind="stable")
            ax.step(xs[order], ys[order], where="post", color=color, alpha=alpha, linewidth=1.4)
            ax.scatter(xs, ys, s=22, color=color, alpha=alpha, label=_plain(s["name"]), zorder=3)
        elif s["style"] == "line":
            ax.plot(xs, ys, marker="o", markersize=3, color=color, alpha=alpha, label=_plain(s["name"]))
        else:
            ax.scatter(
                xs,
                ys,
                s=60,
                marker="D",
                color=color,
                edgecolors="black",
                linewidths=0.6,
                label=_plain(s["name"]),
                zorder=4,
            )
            for x, y, text in pts:
                if text:
                    ax.annotate(_plain(text), (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    if chart.get("diagonal") and drawn:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], color="#888888", linestyle="--", linewidth=1, label="y = x")
    if not drawn:
        ax.text(0.5, 0.5, "no points to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(_plain(chart.get("title", "")), fontsize=10)
    ax.set_xlabel(_plain(chart.get("xlabel", "")))
    ax.set_ylabel(_plain(chart.get("ylabel", "")))
    ax.grid(True, color="#eeeeee")
    if drawn:
        ax.legend(fontsize=8, loc="best")


def _plain(text: str) -> str:
    # Names from a run are text, never matplotlib mathtext ("$...$").
    return str(text).replace("$", r"\$")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
