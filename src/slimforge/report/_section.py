"""A section of the report: its HTML, the interactive charts it holds and the PNG figures it yields."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slimforge.report._html import Html, esc
from slimforge.report._run import RunData, SectionMissing

__all__ = ["Figure", "Section", "chart_box", "from_stage", "missing_section"]



@dataclass(frozen=True)
class Figure:
    """A PNG file under ``figures/``: the ``xy`` charts drawn side by side into it."""

    filename: str
    charts: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Section:
    """One section; ``missing`` (the reason) is set when it has no data to show."""

    key: str
    title: str
    body: Html
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: tuple[Figure, ...] = ()
    missing: str | None = None


def missing_section(key: str, title: str, reason: str) -> Section:
    """A section that says why it has nothing to show."""
    return Section(key=key, title=title, body=Html(f'<p class="missing">{esc(reason)}</p>'), missing=reason)


#: a section builder given the run, one stage's outputs, and the section's key and title.
StageBuilder = Callable[[RunData, dict[str, Any], str, str], Section]


def from_stage(
    stage: str, key: str, title: str, items: str | None = None, empty: str = ""
) -> Callable[[StageBuilder], Callable[[RunData], Section]]:
    """Make ``build(run, outputs, key, title)`` the section ``key`` of stage ``stage``'s outputs.

    Where the stage has no outputs (not run yet, running, failed) the section says why instead;
    with ``items``, also where the outputs' list ``items`` is empty (saying ``empty``).
    """

    def decorate(build: StageBuilder) -> Callable[[RunData], Section]:
        @functools.wraps(build)
        def section(run: RunData) -> Section:
            try:
                outputs = run.outputs(stage)
            except SectionMissing as exc:
                return missing_section(key, title, str(exc))
            if items is not None and not outputs.get(items, []):
                return missing_section(key, title, empty)
            return build(run, outputs, key, title)

        return section

    return decorate


def chart_box(chart_id: str, png: str | None = None) -> Html:
    """Where the page's script draws chart ``chart_id``; the text inside stays if it cannot."""
    note = f' <span class="png">PNG: figures/{esc(png)}</span>' if png else ""
    return Html(
        f'<figure class="chart" data-chart="{esc(chart_id)}"><p class="note">'
        f"The interactive plot needs JavaScript.</p></figure>{note}"
    )
