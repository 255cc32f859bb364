"""``render_report``: read a run directory, write ``report.html`` and ``figures/*.png`` into it."""

from __future__ import annotations

import os
from collections.abc import Callable

from slimforge.io import REPORT_FILE, atomic_write_text
from slimforge.report._figures import check_matplotlib, save_png
from slimforge.report._page import render_page
from slimforge.report._result import ReportResult
from slimforge.report._run import RunData, SectionMissing, load_run
from slimforge.report._section import Section, missing_section
from slimforge.report._sections_estimator import estimator_section
from slimforge.report._sections_headline import headline_section
from slimforge.report._sections_measure import measurement_section
from slimforge.report._sections_models import accuracy_section, compression_section, select_section
from slimforge.report._sections_run import config_section, stages_section
from slimforge.report._sections_search import search_sections

__all__ = ["render_report"]

FIGURES_DIR = "figures"


def _single(builder: Callable[[RunData], Section]) -> Callable[[RunData], list[Section]]:
    return lambda run: [builder(run)]


# (key, title, builder) in page order; the key and title name the section if its builder fails.
_BUILDERS = (
    ("headline", "Summary", _single(headline_section)),
    ("estimator", "Estimator audit", _single(estimator_section)),
    ("front", "Pareto front", search_sections),
    ("select", "Chosen architectures", _single(select_section)),
    ("accuracy", "Estimated vs true accuracy", _single(accuracy_section)),
    ("compression", "Compression, stage by stage", _single(compression_section)),
    ("measurement", "Measurements on the device", _single(measurement_section)),
    ("stages", "Stages", _single(stages_section)),
    ("config", "Config (config.yaml)", _single(config_section)),
)


def _sections(run: RunData) -> list[Section]:
    out = []
    for key, title, builder in _BUILDERS:
        try:
            out += builder(run)
        except (SectionMissing, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # An output in an unexpected shape (a run from another slimforge, a hand-edited store)
            # costs its own section, never the whole report.
            out.append(missing_section(key, title, f"cannot show this section: {exc!r}"))
    return out


def render_report(run_dir: str | os.PathLike, *, png: bool = True, writer_stage: str | None = None) -> ReportResult:
    """Write the run's report: ``RUN_DIR/report.html`` and, with ``png``, ``RUN_DIR/figures/*.png``.

    Works on finished and unfinished runs alike: a stage not run yet, running or failed, or an
    output that cannot be read, leaves its section saying so. Reads the run store without
    changing it and needs no network; the HTML is one self-contained file.

    Args:
        run_dir: a run directory (``slimforge run`` writes one: ``config.yaml``, ``store.sqlite``, ...).
        png: also draw the figures as PNG files (needs matplotlib).
        writer_stage: the run stage writing this report (shown done, not running).

    Returns:
        The written paths and which sections show data (and why the others do not).

    Raises:
        InvalidInputError: ``run_dir`` is not a run directory (nothing is written then).
        MissingDependencyError: ``png`` without matplotlib installed (nothing is written then).
    """
    run = load_run(run_dir, writer_stage=writer_stage)
    if png:
        check_matplotlib()
    sections = _sections(run)
    png_paths = []
    if png:
        for figure in (f for s in sections if not s.missing for f in s.figures):
            png_paths.append(save_png(figure.charts, run.run_dir / FIGURES_DIR / figure.filename))
    html_path = run.run_dir / REPORT_FILE
    # Written beside and renamed, so a reader (or a crash) never sees half a report.
    atomic_write_text(html_path, render_page(run, sections))
    return ReportResult(
        run_dir=run.run_dir,
        html_path=html_path,
        png_paths=tuple(png_paths),
        sections_present=tuple(s.key for s in sections if not s.missing),
        sections_missing={s.key: s.missing for s in sections if s.missing},
    )
