"""Reading a run directory for the report: config, stage status and each stage's outputs.

Nothing here writes: the store is opened with ``create=False`` and closed again, and every other
file is only read. A stage that has not finished, or an output that cannot be read, becomes a
:class:`SectionMissing` with a sentence the report shows in place of the section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.io import CONFIG_FILE, FORMAT_VERSION, STORE_FILE, RunStore, StageRecord
from slimforge.report._summary import SUMMARY_META_KEY

__all__ = ["RunData", "SectionMissing", "load_run", "read_json"]

_SEARCH_PREFIX = "search:"


class SectionMissing(Exception):
    """A section has no data to show; the message says why (shown in the report)."""


@dataclass(frozen=True)
class RunData:
    """What the report needs from a run directory, read once.

    Attributes:
        run_dir: the run directory.
        config_text: ``config.yaml`` verbatim.
        stages: every stage row of the run store, in the order first set.
        meta: from the store's run record: ``format_version`` and the ``slimforge`` that wrote it.
    """

    run_dir: Path
    config_text: str
    stages: tuple[StageRecord, ...]
    meta: dict[str, Any]
    summary: dict[str, Any] | None = None
    holder: int | None = None
    writer_stage: str | None = None

    def status(self, record: StageRecord) -> str:
        """A stage's status as the report shows it: ``running`` only while a live process holds the run.

        A stage recorded as running in a run directory no process holds was interrupted (a crash,
        ``kill -9``); the same command resumes it. The stage writing this very report is ``done``.
        """
        if record.name == self.writer_stage:
            return "done"
        if record.status == "running" and self.holder is None:
            return "interrupted"
        return record.status

    def stage(self, name: str) -> StageRecord | None:
        """The row of stage ``name``, or None if it was never recorded."""
        return next((s for s in self.stages if s.name == name), None)

    def outputs(self, name: str) -> dict[str, Any]:
        """The outputs of finished stage ``name``; raises :class:`SectionMissing` if it is not done."""
        record = self.stage(name)
        if record is None or record.status != "done":
            raise SectionMissing(stage_note(name, record, self.status(record) if record else None))
        return record.outputs

    def devices(self) -> tuple[str, ...]:
        """Device names searched: from the ``search:<device>`` stages, then any other ``search/<d>/``."""
        names = [s.name[len(_SEARCH_PREFIX) :] for s in self.stages if s.name.startswith(_SEARCH_PREFIX)]
        root = self.run_dir / "search"
        if root.is_dir():
            names += sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in names)
        return tuple(names)

    def path(self, relative: str) -> Path:
        """A path from a stage's outputs (relative to the run directory) that stays inside it."""
        path = (self.run_dir / relative).resolve()
        if not path.is_relative_to(self.run_dir.resolve()):
            raise SectionMissing(f"the path {relative!r} in the run store points outside the run directory")
        return path


def stage_note(name: str, record: StageRecord | None, status: str | None = None) -> str:
    """Why stage ``name`` has no results: not run yet, running, interrupted, pending or failed."""
    if record is None:
        return f"stage {name!r} has not run yet"
    status = status or record.status
    when = format_time(record.updated_at)
    if status == "failed":
        error = record.outputs.get("error")
        return f"stage {name!r} failed ({when})" + (f": {error}" if error else "")
    if status == "running":
        return f"stage {name!r} is running (since {when})"
    if status == "interrupted":
        return f"stage {name!r} was interrupted ({when}); run the same command again to resume it"
    return f"stage {name!r} is {status}"


def format_time(unix_s: float) -> str:
    """A Unix time as ``2024-05-01 12:00:00 UTC`` (``-`` for 0)."""
    if not unix_s:
        return "-"
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content; a missing or broken file raises :class:`SectionMissing` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SectionMissing(f"{what} {path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SectionMissing(f"cannot read {what} {path.name}: {exc}") from None


def load_run(run_dir: str | Path, *, writer_stage: str | None = None) -> RunData:
    """Read a run directory's config, stages and summary; a directory that is not a run raises.

    ``writer_stage`` names the stage writing the report (shown as done rather than running).
    """
    from slimforge.io import lock_holder

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(
            f"run directory {run_dir} does not exist; give the directory `slimforge run` wrote"
        )
    missing = [name for name in (STORE_FILE, CONFIG_FILE) if not (run_dir / name).is_file()]
    if missing:
        raise InvalidInputError(
            f"{run_dir} is not a slimforge run directory (no {' or '.join(missing)}); "
            "give the directory `slimforge run` wrote"
        )
    try:
        config_text = (run_dir / CONFIG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {run_dir / CONFIG_FILE}: {exc}") from None
    holder = lock_holder(run_dir)
    with RunStore(run_dir / STORE_FILE, create=False) as store:
        stages = tuple(store.stages())
        record = store.get_meta("run")
        summary = store.get_meta(SUMMARY_META_KEY)
    # The run record (pipeline): {"format_version", "slimforge", "config"}; absent only in a run
    # directory whose first stage has not started, which has nothing to report but its config.
    meta = (
        {k: record[k] for k in ("format_version", "slimforge") if k in record}
        if isinstance(record, dict)
        else {}
    )
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InvalidInputError(
            f"run directory {run_dir} was written by slimforge {meta.get('slimforge', '?')} in run format "
            f"{version}, but this slimforge reads format {FORMAT_VERSION}; "
            "report it with the release that wrote it"
        )
    return RunData(
        run_dir=run_dir, config_text=config_text, stages=stages, meta=meta,
        summary=summary if isinstance(summary, dict) else None, holder=holder, writer_stage=writer_stage,
    )
