"""Stage ``report``: the self-contained HTML report and its PNG figures (see :mod:`slimforge.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimforge.runs._context import RunContext
from slimforge.runs._outputs import ReportOutput
from slimforge.runs._stage import RunStage
from slimforge.runs.config import RunConfig
from slimforge.runs.layout import REPORT_FILE

__all__ = ["ReportStage"]


class ReportStage(RunStage):
    """Render ``report.html`` (and ``figures/*.png``) from everything the run has recorded."""

    name = "report"
    output = ReportOutput

    def __init__(self, upstream: tuple[str, ...] = ()) -> None:
        self.upstream = upstream

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return self.upstream

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {"png": config.report_png}

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return [ctx.path(REPORT_FILE), ctx.path("figures")]

    def _run(self, ctx: RunContext) -> ReportOutput:
        from slimforge.report import render_report

        ctx.save_summary(html=ctx.path(REPORT_FILE))
        result = render_report(ctx.run_dir, png=ctx.config.report_png, writer_stage=self.key)
        return ReportOutput(ctx.rel(result.html_path), tuple(ctx.rel(p) for p in result.png_paths))
