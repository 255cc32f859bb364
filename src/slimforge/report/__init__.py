"""The run report: one self-contained HTML file with interactive plots, and PNG figures.

``render_report(run_dir)`` writes ``RUN_DIR/report.html`` (inline CSS, a small inline script drawing
SVG plots, no external requests) and ``RUN_DIR/figures/*.png``, for finished and unfinished runs.
``plot_fronts`` draws several Pareto fronts and labelled reference points into one PNG, for
benchmarks that compare spaces or methods.
"""

from __future__ import annotations

from slimforge.report._figures import plot_fronts
from slimforge.report._render import render_report
from slimforge.report._result import ReportResult
from slimforge.report._summary import (
    SUMMARY_META_KEY,
    ChosenSummary,
    LatencyFigure,
    ReferenceFigure,
    RunSummary,
)

__all__ = [
    "SUMMARY_META_KEY",
    "ChosenSummary",
    "LatencyFigure",
    "ReferenceFigure",
    "ReportResult",
    "RunSummary",
    "plot_fronts",
    "render_report",
]
