"""Where things live in a run directory, and what each stage records.

A run directory (``slimforge run CONFIG.yaml`` writes one) holds::

    RUN_DIR/
      config.yaml              the validated config with every default filled in (echoed)
      store.sqlite             the run store: meta, stage status and outputs, measurement cache
      supernet/                the supernet checkpoint (state_dict + JSON config), stage "supernet"
      search/<device>/         one search per device: store.sqlite (every evaluation) and
                               result.json (SearchResult.to_dict(), evaluations in order)
      models/<name>/trained/   a retrained chosen architecture (saved slimforge model)
      models/<name>/compressed/  its compressed version (compression.json, model.onnx, ...)
      models/<name>/model.onnx   the exported deployable model
      report.html, figures/*.png

The run store's ``stages`` table has one row per stage, named as in :data:`STAGES` (searching is
one stage per device, ``search:<device>``). Every path in a stage's outputs is relative to the
run directory. The outputs of a finished (``done``) stage are::

    supernet     {"dir": "supernet", "method": str, "epochs": int, "seconds": float,
                  "images_per_s": float, "val_accuracy_pct": float | None}
    search:<d>   {"device": str (name), "spec": str (device spec), "dir": "search/<d>",
                  "result": "search/<d>/result.json", "objectives": [str], "constraints": [str],
                  "evaluations": int, "front": int, "accuracy_source": str, "cost_source": str}
    select       {"chosen": [{"name": str, "device": str, "arch": str, "genome": [int],
                  "rule": str, "objectives": {str: float}, "metrics": {str: float}}]}
    retrain      {"models": [{"name": str, "arch": str, "dir": str, "estimated_accuracy_pct": float,
                  "accuracy_pct": float, "val_accuracy_pct": float, "epochs": int, "seconds": float}]}
    compress     {"models": [{"name": str, "dir": str, "report": str (compression.json)}]}
    export       {"models": [{"name": str, "onnx": str, "bytes": int}]}
    measure      {"models": [{"name": str, "device": str, "measurement": dict (DeviceMeasurement)}],
                  "reference": [{"name": str, "width": float, "accuracy_pct": float | None,
                                 "device": str, "measurement": dict}]}
    report       {"html": "report.html", "figures": [str]}
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "REPORT_FILE",
    "STORE_FILE",
    "model_dir",
    "reference_dir",
    "search_dir",
    "search_stage",
]

from slimforge.io import CONFIG_FILE, FORMAT_VERSION, REPORT_FILE, STORE_FILE, search_stage


def search_dir(run_dir: str | Path, device: str) -> Path:
    """The directory of the search against ``device``."""
    return Path(run_dir) / "search" / device


def model_dir(run_dir: str | Path, name: str) -> Path:
    """The directory of a chosen model (its trained, compressed and exported forms)."""
    return Path(run_dir) / "models" / name


def reference_dir(run_dir: str | Path, name: str) -> Path:
    """The directory of a reference network (its trained form and exports)."""
    return Path(run_dir) / "references" / name
