"""The run store now lives in the storage tier: :mod:`slimforge.io` (``RunStore``, ``StoreError``, ...)."""

from __future__ import annotations

from slimforge.io import (  # noqa: F401 - re-exported for callers of the old path
    SCHEMA_VERSION,
    STAGE_STATUSES,
    EvaluationRecord,
    RunStore,
    StageRecord,
    StoreError,
    canonical_json,
)

__all__ = [
    "SCHEMA_VERSION",
    "STAGE_STATUSES",
    "EvaluationRecord",
    "RunStore",
    "StageRecord",
    "StoreError",
    "canonical_json",
]
