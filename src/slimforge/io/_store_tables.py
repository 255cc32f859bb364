"""The run store's tables, one per kind of user: the evaluation log (search), the stage log (runs),
the measurement cache (hardware). Each is a mixin of :class:`~slimforge.io.RunStore` and a
:class:`typing.Protocol` naming the few methods its user needs, so a search is written against an
``EvaluationLog`` and a device against a ``MeasurementCache`` rather than the whole store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from slimforge.errors import InvalidInputError
from slimforge.io._store_records import (
    EvaluationRecord,
    StageRecord,
    StoreError,
    _check_floats,
    _check_genome,
    _check_key,
    _check_seconds,
    _dumps,
    canonical_json,
)

__all__ = [
    "EvaluationLog",
    "EvaluationTable",
    "MeasurementCache",
    "MeasurementTable",
    "StageLog",
    "StageTable",
]

_SELECT_EVAL = (
    "SELECT seq, key, genome, objectives, constraints, feasible, seconds, meta, created_at FROM evaluations"
)
_SELECT_STAGE = "SELECT name, status, outputs, updated_at, fingerprint FROM stages"
#: the statuses a stage row may hold.
STAGE_STATUSES = ("pending", "running", "done", "failed")


class EvaluationLog(Protocol):
    """What a search needs of a store: append evaluations, read them back, and its run metadata."""

    def put_evaluations(self, rows: Sequence[EvaluationRecord]) -> None: ...
    def evaluations(self, *, since: int = 0) -> list[EvaluationRecord]: ...
    def get_meta(self, key: str, default: Any = None) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...


class StageLog(Protocol):
    """What a run needs of a store: stage status, fingerprints and typed outputs, and its metadata."""

    def set_stage(self, name: str, status: str, outputs: Mapping[str, Any] | None = None, *,
                  fingerprint: str = "") -> None: ...
    def get_stage(self, name: str) -> StageRecord | None: ...
    def stages(self) -> list[StageRecord]: ...
    def update_meta(self, key: str, update: Any) -> Any: ...


class MeasurementCache(Protocol):
    """What a device needs of a store: measurements cached under their conditions."""

    def put_measurement(self, conditions: Mapping[str, Any], result: Mapping[str, Any]) -> None: ...
    def get_measurement(self, conditions: Mapping[str, Any]) -> dict | None: ...


class EvaluationTable:
    """The ``evaluations`` table (a mixin of RunStore; it provides ``_write``, ``_read``, ``_loads``)."""

    def put_evaluation(
        self,
        key: str,
        *,
        genome: Sequence[int],
        objectives: Mapping[str, float],
        constraints: Mapping[str, float],
        feasible: bool,
        seconds: float,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one evaluated candidate; a key already stored keeps its first result."""
        record = EvaluationRecord.new(
            key,
            genome=genome,
            objectives=objectives,
            constraints=constraints,
            feasible=feasible,
            seconds=seconds,
            meta=meta,
        )
        self.put_evaluations([record])

    def put_evaluations(self, rows: Sequence[EvaluationRecord]) -> None:
        """Store several evaluated candidates in one transaction (all or none).

        The store assigns ``seq``; each record's ``created_at`` is kept. Keys already stored, or
        repeated within ``rows``, keep their first result.
        """
        params = []
        for row in rows:
            if not isinstance(row, EvaluationRecord):
                raise InvalidInputError(
                    f"put_evaluations takes EvaluationRecord rows, got {type(row).__name__}; "
                    "make them with EvaluationRecord.new(key, genome=..., ...)"
                )
            what = f"evaluation {row.key!r}"
            params.append(
                (
                    _check_key(row.key),
                    _dumps(list(_check_genome(row.genome)), what=what),
                    _dumps(_check_floats(row.objectives, "objective"), what=what),
                    _dumps(_check_floats(row.constraints, "constraint"), what=what),
                    int(bool(row.feasible)),
                    _check_seconds(row.seconds),
                    _dumps(dict(row.meta), what=what),
                    float(row.created_at),
                )
            )
        if not params:
            return
        with self._write(f"store {len(params)} evaluation(s)") as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO evaluations "
                "(key, genome, objectives, constraints, feasible, seconds, meta, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )

    def get_evaluation(self, key: str) -> EvaluationRecord | None:
        """The stored evaluation of ``key``, or None."""
        rows = self._read("an evaluation", f"{_SELECT_EVAL} WHERE key = ?", (key,))
        return self._evaluation(rows[0]) if rows else None

    def evaluations(self, *, since: int = 0) -> list[EvaluationRecord]:
        """Every stored evaluation in insertion order; only those with ``seq > since`` if given."""
        rows = self._read("evaluations", f"{_SELECT_EVAL} WHERE seq > ? ORDER BY seq", (int(since),))
        return [self._evaluation(r) for r in rows]

    def _evaluation(self, row: tuple) -> EvaluationRecord:
        seq, key, genome, objectives, constraints, feasible, seconds, meta, created_at = row
        what = f"evaluation {key!r} (row {seq})"
        try:
            return EvaluationRecord(
                seq=int(seq),
                key=key,
                genome=tuple(int(g) for g in self._loads(genome, what)),
                objectives=self._loads(objectives, what),
                constraints=self._loads(constraints, what),
                feasible=bool(feasible),
                seconds=float(seconds),
                meta=self._loads(meta, what),
                created_at=float(created_at),
            )
        except (TypeError, ValueError) as exc:
            raise StoreError(f"run store {self.path}: {what} is malformed ({exc}); restore the file or "
                             "start a new run directory") from None

    def __len__(self) -> int:
        return int(self._read("the evaluation count", "SELECT COUNT(*) FROM evaluations")[0][0])

    def __bool__(self) -> bool:
        # An open, empty store is still a store: keep `if store:` from meaning "has rows".
        return True

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return bool(self._read("an evaluation", "SELECT 1 FROM evaluations WHERE key = ?", (key,)))


class StageTable:
    """The ``stages`` table (a mixin of RunStore)."""

    def set_stage(
        self, name: str, status: str, outputs: Mapping[str, Any] | None = None, *, fingerprint: str = ""
    ) -> None:
        """Record a stage's status (one of :data:`STAGE_STATUSES`), its outputs and fingerprint (replaced)."""
        if status not in STAGE_STATUSES:
            raise InvalidInputError(
                f"unknown stage status {status!r} for stage {name!r}; use one of {', '.join(STAGE_STATUSES)}"
            )
        text = _dumps(dict(outputs or {}), what=f"outputs of stage {name!r}")
        with self._write(f"set stage {name!r}") as conn:
            # An upsert keeps the row (and its rowid), so stages() lists stages in the order first set.
            conn.execute(
                "INSERT INTO stages (name, status, outputs, updated_at, fingerprint) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET status = excluded.status, outputs = excluded.outputs, "
                "updated_at = excluded.updated_at, fingerprint = excluded.fingerprint",
                (_check_key(name), status, text, time.time(), str(fingerprint)),
            )

    def delete_stage(self, name: str) -> None:
        """Forget stage ``name`` (a stage the current config no longer has)."""
        with self._write(f"delete stage {name!r}") as conn:
            conn.execute("DELETE FROM stages WHERE name = ?", (_check_key(name),))

    def get_stage(self, name: str) -> StageRecord | None:
        """The status of stage ``name``, or None if it was never set."""
        rows = self._read(f"stage {name!r}", f"{_SELECT_STAGE} WHERE name = ?", (name,))
        return self._stage(rows[0]) if rows else None

    def stages(self) -> list[StageRecord]:
        """Every stage, in the order each was first set."""
        return [self._stage(r) for r in self._read("stages", f"{_SELECT_STAGE} ORDER BY rowid")]

    def _stage(self, row: tuple) -> StageRecord:
        name, status, outputs, updated_at, fingerprint = row
        return StageRecord(
            name=name,
            status=status,
            outputs=self._loads(outputs, f"the outputs of stage {name!r}"),
            updated_at=float(updated_at),
            fingerprint=fingerprint or "",
        )


class MeasurementTable:
    """The ``measurements`` table (a mixin of RunStore)."""

    def put_measurement(self, conditions: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Cache a measurement ``result`` under its ``conditions``; a later put replaces it."""
        key = canonical_json(dict(conditions))
        text = _dumps(dict(result), what="measurement result")
        with self._write("store a measurement") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO measurements (key, result, created_at) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )

    def get_measurement(self, conditions: Mapping[str, Any]) -> dict | None:
        """The cached result measured under exactly ``conditions``, or None."""
        key = canonical_json(dict(conditions))
        rows = self._read("a measurement", "SELECT result FROM measurements WHERE key = ?", (key,))
        return self._loads(rows[0][0], "a cached measurement") if rows else None
