"""Stage ``report``: the self-contained HTML report and its PNG figures (see :mod:`slimforge.report`)."""

from __future__ import annotations

from typing import Any

from slimforge.runs._context import RunContext

__all__ = ["run_report_stage"]


def run_report_stage(ctx: RunContext) -> dict[str, Any]:
    """Render ``report.html`` (and ``figures/*.png``) from everything the run has recorded."""
    from slimforge.report import render_report

    result = render_report(ctx.run_dir, png=ctx.config.report_png)
    return {"html": ctx.rel(result.html_path), "figures": [ctx.rel(p) for p in result.png_paths]}
