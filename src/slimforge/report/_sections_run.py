"""The run sections: stage status and the config, verbatim."""

from __future__ import annotations

from typing import Any

from slimforge.report._html import Html, esc, fmt, table
from slimforge.report._run import RunData, format_time
from slimforge.report._section import Section, missing_section

__all__ = ["config_section", "stages_section"]


def _outputs_summary(outputs: dict[str, Any]) -> str:
    """Scalar outputs as ``key value``; lists as their length (the sections below show the details)."""
    parts = []
    for k, v in outputs.items():
        if isinstance(v, list):
            parts.append(f"{k}: {len(v)}")
        elif not isinstance(v, dict):
            parts.append(f"{k} {fmt(v)}")
    return "; ".join(parts)


def stages_section(run: RunData) -> Section:
    """Every stage in run order with its status, last update and outputs in short."""
    rows = []
    for s in run.stages:
        status = run.status(s)
        badge = Html(f'<span class="status status-{esc(status.replace(" ", "-"))}">{esc(status)}</span>')
        rows.append([s.name, badge, format_time(s.updated_at), _outputs_summary(s.outputs)])
    if not rows:
        return missing_section("stages", "Stages", "no stage has started yet")
    note = ""
    if any(run.status(s) == "interrupted" for s in run.stages):
        note = ('<p class="note">interrupted: the process running the stage ended without finishing it '
                "(a crash or kill); run the same command again to resume it.</p>")
    body = table(["stage", "status", "updated", "outputs"], rows) + note
    return Section(key="stages", title="Stages", body=Html(body))


def config_section(run: RunData) -> Section:
    """``config.yaml`` as the run echoed it, every default filled in."""
    if not run.config_text.strip():
        return missing_section("config", "Config", "config.yaml is empty")
    return Section(
        key="config",
        title="Config (config.yaml)",
        body=Html(f"<pre class='config'>{esc(run.config_text)}</pre>"),
    )
