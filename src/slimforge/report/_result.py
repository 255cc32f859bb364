"""What :func:`~slimforge.report.render_report` returns: the files written and the sections shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ReportResult"]


@dataclass(frozen=True)
class ReportResult:
    """The report of one run directory.

    Attributes:
        run_dir: the run directory reported on.
        html_path: the written ``report.html``.
        png_paths: the written PNG figures (empty with ``png=False``).
        sections_present: the sections that show data, in page order (``"front:<device>"``, ...).
        sections_missing: section -> why it shows no data (a stage not run yet, running, failed,
            or an output that could not be read).
    """

    run_dir: Path
    html_path: Path
    png_paths: tuple[Path, ...]
    sections_present: tuple[str, ...]
    sections_missing: dict[str, str] = field(default_factory=dict)

    def stage_outputs(self) -> dict[str, Any]:
        """The outputs of the run's ``report`` stage: paths relative to the run directory."""
        return {
            "html": self.html_path.relative_to(self.run_dir).as_posix(),
            "figures": [p.relative_to(self.run_dir).as_posix() for p in self.png_paths],
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        return {
            "run_dir": str(self.run_dir),
            "html_path": str(self.html_path),
            "png_paths": [str(p) for p in self.png_paths],
            "sections_present": list(self.sections_present),
            "sections_missing": dict(self.sections_missing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            run_dir=Path(data["run_dir"]),
            html_path=Path(data["html_path"]),
            png_paths=tuple(Path(p) for p in data["png_paths"]),
            sections_present=tuple(data["sections_present"]),
            sections_missing={str(k): str(v) for k, v in data["sections_missing"].items()},
        )
