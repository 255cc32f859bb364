"""Names of the files a run directory holds, shared by the run (which writes them) and the report (which reads them)."""

from __future__ import annotations

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "REPORT_FILE", "STORE_FILE", "search_stage"]

#: version of the run-directory layout; a run directory of another version is refused.
FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
STORE_FILE = "store.sqlite"
REPORT_FILE = "report.html"


def search_stage(device: str) -> str:
    """The stage name of the search against ``device`` (a device name from the config)."""
    return f"search:{device}"
