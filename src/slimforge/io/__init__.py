"""The storage tier: atomic writes, run-directory locks, safe YAML, workers that end with their parent,
progress that also shows in a log file, plain-text tables, saved models (and the builder registry that reloads them),
the run store and
the names of a run directory's files.

Everything here sits at the bottom of the layer order (beside ``data``): any package may use it,
it imports no other slimforge package but :mod:`slimforge.errors`.

>>> from slimforge.io import atomic_write_json, DirectoryLock
>>> with DirectoryLock("runs/x"):                                 # doctest: +SKIP
...     atomic_write_json("runs/x/result.json", {"ok": True})
"""

from __future__ import annotations

from slimforge.io._atomic import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from slimforge.io._layout import CONFIG_FILE, FORMAT_VERSION, REPORT_FILE, STORE_FILE, search_stage
from slimforge.io._lock import LOCK_FILE, DirectoryLock, LockedError, lock_holder
from slimforge.io._model import (
    BUILDERS,
    INPUT_SHAPES,
    ModelBuildError,
    build_model,
    load_model,
    read_model_config,
    save_model,
)
from slimforge.io._open import ModelSource, open_model, parse_model_args
from slimforge.io._predictor_file import check_predictor_document, read_predictor_file
from slimforge.io._process import exit_with_parent
from slimforge.io._progress import LineProgress, progress_bar
from slimforge.io._read import read_text_file
from slimforge.io._record import JsonRecord, jsonable
from slimforge.io._refs import ReferenceError, import_reference, is_reference
from slimforge.io._store import SCHEMA_VERSION, STAGE_STATUSES, RunStore
from slimforge.io._store_records import EvaluationRecord, StageRecord, StoreError, canonical_json
from slimforge.io._store_tables import EvaluationLog, MeasurementCache, StageLog
from slimforge.io._text import render_table
from slimforge.io._yaml import YamlError, load_yaml

__all__ = [
    "BUILDERS",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "INPUT_SHAPES",
    "LOCK_FILE",
    "REPORT_FILE",
    "SCHEMA_VERSION",
    "STAGE_STATUSES",
    "STORE_FILE",
    "EvaluationLog",
    "EvaluationRecord",
    "JsonRecord",
    "RunStore",
    "StageLog",
    "StageRecord",
    "StoreError",
    "canonical_json",
    "check_predictor_document",
    "import_reference",
    "is_reference",
    "jsonable",
    "search_stage",
    "DirectoryLock",
    "LineProgress",
    "LockedError",
    "MeasurementCache",
    "ReferenceError",
    "ModelBuildError",
    "ModelSource",
    "YamlError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_model",
    "exit_with_parent",
    "load_model",
    "load_yaml",
    "lock_holder",
    "open_model",
    "parse_model_args",
    "progress_bar",
    "read_model_config",
    "read_predictor_file",
    "read_text_file",
    "render_table",
    "save_model",
]
