"""The page: sections, inline CSS and script, and the chart data as JSON, in one HTML file."""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import resources

from slimforge import __version__
from slimforge.report._charts import safe_name
from slimforge.report._html import Html, embed_json, esc
from slimforge.report._run import RunData, format_time
from slimforge.report._section import Section

__all__ = ["render_page"]

# No network at all: inline styles and scripts only, images only as data: URIs.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _resource(name: str) -> str:
    text = resources.files("slimforge.report").joinpath(name).read_text(encoding="utf-8")
    # Our own files, inlined verbatim: they must not end the element they are inlined into.
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"slimforge/report/{name} must not contain '</script' or '</style'")
    return text


def render_page(run: RunData, sections: Sequence[Section]) -> str:
    """The whole report as one self-contained HTML document."""
    charts = {cid: spec for s in sections for cid, spec in s.charts.items()}
    nav = " ".join(
        f'<a href="#sec-{esc(safe_name(s.key))}"{" class=missing" if s.missing else ""}>{esc(s.title)}</a>'
        for s in sections
    )
    body = "".join(
        f'<section id="sec-{esc(safe_name(s.key))}" data-section="{esc(s.key)}">'
        f"<h2>{esc(s.title)}</h2>{s.body}</section>"
        for s in sections
    )
    done = sum(st.status == "done" for st in run.stages)
    name = run.run_dir.resolve().name
    writer = f" (written by slimforge {run.meta['slimforge']})" if "slimforge" in run.meta else ""
    subtitle = (
        f"run directory {run.run_dir}{writer} · {done} of {len(run.stages)} recorded stages done · "
        f"generated {format_time(time.time())} by slimforge {__version__}"
    )
    return Html(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>slimforge report: {esc(name)}</title>"
        f"<style>{_resource('report.css')}</style></head>\n<body>"
        f"<header><h1>slimforge run report: {esc(name)}</h1><p>{esc(subtitle)}</p><nav>{nav}</nav></header>\n"
        f"<main>{body}</main>\n"
        f'<script type="application/json" id="report-data">{embed_json({"charts": charts})}</script>\n'
        f"<script>{_resource('report.js')}</script>\n</body></html>\n"
    )
