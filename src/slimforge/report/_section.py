"""A section of the report: its HTML, the interactive charts it holds and the PNG figures it yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slimforge.report._html import Html, esc

__all__ = ["Figure", "Section", "chart_box", "missing_section"]


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


def chart_box(chart_id: str, png: str | None = None) -> Html:
    """Where the page's script draws chart ``chart_id``; the text inside stays if it cannot."""
    note = f' <span class="png">PNG: figures/{esc(png)}</span>' if png else ""
    return Html(
        f'<figure class="chart" data-chart="{esc(chart_id)}"><p class="note">'
        f"The interactive plot needs JavaScript.</p></figure>{note}"
    )
