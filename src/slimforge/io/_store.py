"""The run store: one SQLite database per run directory.

It holds every evaluated candidate, the run's metadata (config, seed, counters), the status of
each stage of a resumable run, and a cache of device measurements keyed by their conditions.
Any stage can resume after a crash and any result can be re-reported offline from this file.

Every write is one SQLite transaction, so a process killed mid-write leaves a store that opens
and holds only whole rows. The database runs in write-ahead-log mode, so another process can
read it while a search writes to it. Nested values are JSON (never pickle); non-finite floats
are written as the ``NaN`` / ``Infinity`` tokens of Python's ``json`` module, so they round-trip.

>>> with RunStore("runs/cifar10/store.sqlite") as store:
...     store.put_evaluation("|nor_conv_3x3~0|+|...", genome=[3, 1, 0], objectives={"err": 0.1},
...                          constraints={}, feasible=True, seconds=0.2)
"""

from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = [
    "SCHEMA_VERSION",
    "STAGE_STATUSES",
    "EvaluationRecord",
    "RunStore",
    "StageRecord",
    "StoreError",
    "canonical_json",
]

SCHEMA_VERSION = 1
# Written to the SQLite header (PRAGMA application_id) so that any other SQLite file is told
# apart from a run store without guessing from table names. 0x534C4647 is "SLFG" in ASCII.
APPLICATION_ID = 0x534C4647
STAGE_STATUSES = ("pending", "running", "done", "failed")
# How long a writer waits for another process's transaction before giving up.
_BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE evaluations (
    seq         INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    genome      TEXT NOT NULL,
    objectives  TEXT NOT NULL,
    constraints TEXT NOT NULL,
    feasible    INTEGER NOT NULL CHECK (feasible IN (0, 1)),
    seconds     REAL NOT NULL,
    meta        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE stages (
    name        TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    outputs     TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE TABLE measurements (
    key        TEXT PRIMARY KEY,
    result     TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class StoreError(SlimforgeError):
    """A run store that cannot be opened, read or written; the message says which file and why."""


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluated candidate.

    ``key`` is the canonical architecture string of the candidate within its space; ``seq`` is its
    position in the store (assigned by the store, 1-based, in insertion order); ``seconds`` is the
    wall time the evaluation took; ``created_at`` is a Unix time in seconds.
    """

    seq: int
    key: str
    genome: tuple[int, ...]
    objectives: dict[str, float]
    constraints: dict[str, float]
    feasible: bool
    seconds: float
    meta: dict = field(default_factory=dict)
    created_at: float = 0.0

    @classmethod
    def new(
        cls,
        key: str,
        *,
        genome: Sequence[int],
        objectives: Mapping[str, float],
        constraints: Mapping[str, float],
        feasible: bool,
        seconds: float,
        meta: Mapping[str, Any] | None = None,
    ) -> EvaluationRecord:
        """A record not yet stored (``seq`` 0, ``created_at`` now), for :meth:`RunStore.put_evaluations`."""
        return cls(
            seq=0,
            key=_check_key(key),
            genome=_check_genome(genome),
            objectives=_check_floats(objectives, "objective"),
            constraints=_check_floats(constraints, "constraint"),
            feasible=bool(feasible),
            seconds=_check_seconds(seconds),
            meta=dict(meta or {}),
            created_at=time.time(),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the genome as a list)."""
        out = asdict(self)
        out["genome"] = list(self.genome)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            seq=int(data["seq"]),
            key=str(data["key"]),
            genome=tuple(int(g) for g in data["genome"]),
            objectives={str(k): float(v) for k, v in data["objectives"].items()},
            constraints={str(k): float(v) for k, v in data["constraints"].items()},
            feasible=bool(data["feasible"]),
            seconds=float(data["seconds"]),
            meta=dict(data.get("meta") or {}),
            created_at=float(data.get("created_at", 0.0)),
        )


@dataclass(frozen=True)
class StageRecord:
    """Status of one stage of a resumable run; ``updated_at`` is a Unix time in seconds.

    ``fingerprint`` identifies the settings and inputs the stage ran with (empty when unknown),
    so a run can tell a finished stage it may reuse from one whose settings have changed.
    """

    name: str
    status: str
    outputs: dict = field(default_factory=dict)
    updated_at: float = 0.0
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            status=str(data["status"]),
            outputs=dict(data.get("outputs") or {}),
            updated_at=float(data.get("updated_at", 0.0)),
            fingerprint=str(data.get("fingerprint", "")),
        )


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces; the measurement-cache key.

    Tuples and lists give the same text; ``1`` and ``1.0`` do not.
    """
    return _dumps(value, sort_keys=True)


class RunStore:
    """The SQLite store of one run: evaluations, metadata, stage status and measurements.

    Args:
        path: the database file (conventionally ``<run dir>/store.sqlite``).
        create: create the file (and its missing parent directories) when it does not exist;
            with ``False`` a missing file raises :class:`StoreError`.

    A file written by another schema version, or one that is not a slimforge store, is refused
    with a :class:`StoreError` naming the file, its version and the supported one. One store
    object may be used from several threads; open one per process (it cannot be pickled).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise StoreError(f"run store path {self.path} is a directory; give the database file inside it")
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"no run store at {self.path}; check the run directory, or pass create=True to start one"
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of run store {self.path}: {exc}") from exc
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one call is one transaction.
            # A "rw" URI keeps sqlite from creating the file when create=False.
            uri = self.path.resolve().as_uri() + ("" if create else "?mode=rw")
            self._conn = sqlite3.connect(
                uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._open(create)
        except sqlite3.Error as exc:
            self._abandon()
            raise StoreError(
                f"cannot open run store {self.path}: {exc}; check that it is a slimforge run store "
                "and that you may read and write it"
            ) from exc
        except BaseException:
            self._abandon()
            raise

    # -- opening -----------------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        conn = self._conn
        assert conn is not None
        # NORMAL in WAL mode survives a killed process (only power loss may drop the last commits).
        conn.execute("PRAGMA synchronous=NORMAL")
        # Read the header in one read transaction: two autocommit reads could straddle another
        # process's creation of the schema and see half of it (no application_id, but tables).
        conn.execute("BEGIN")
        try:
            is_new = self._check_header(conn, create)
        finally:
            conn.execute("COMMIT")
        # WAL lets readers in other processes see whole committed transactions while we write;
        # it must be switched outside a transaction and persists in the file.
        _retry_busy(lambda: self._ensure_wal(conn))
        if not is_new:
            _retry_busy(lambda: self._migrate(conn))
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Look again under the write lock: another process may have created it meanwhile.
            if self._check_header(conn, create):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Add what later releases of the same schema version added (the stages' fingerprint)."""
        columns = [r[1] for r in conn.execute("PRAGMA table_info(stages)")]
        if "fingerprint" in columns:
            return
        if not os.access(self.path, os.W_OK):
            return  # a read-only store is read as it is; the column defaults to ''
        conn.execute("BEGIN IMMEDIATE")
        try:
            columns = [r[1] for r in conn.execute("PRAGMA table_info(stages)")]
            if "fingerprint" not in columns:
                conn.execute("ALTER TABLE stages ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _ensure_wal(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")

    def _check_header(self, conn: sqlite3.Connection, create: bool) -> bool:
        """Return True if the file is still empty (schema to be created); raise if it is not ours."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id == APPLICATION_ID:
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"run store {self.path} has schema version {version}, but this slimforge supports "
                    f"version {SCHEMA_VERSION}; open it with the slimforge release that wrote it, "
                    "or start a new run directory"
                )
            return False
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if app_id != 0 or tables:
            listed = ", ".join(tables[:5]) or "none"
            raise StoreError(
                f"{self.path} is an SQLite database but not a slimforge run store (application_id "
                f"{app_id:#x}, schema version {version}, tables: {listed}; supported schema version "
                f"{SCHEMA_VERSION}); give a new path for the run store"
            )
        if not create:
            raise StoreError(
                f"{self.path} is an empty database, not a slimforge run store; pass create=True to "
                "make it one"
            )
        return True

    def _abandon(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- plumbing ----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(
                f"run store {self.path} is closed; open it again with RunStore({str(self.path)!r})"
            )
        return self._conn

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite error rolls it back and becomes a StoreError."""
        with self._lock:
            conn = self._connection()
            try:
                # IMMEDIATE takes the write lock up front, so two writers queue (busy timeout)
                # instead of one failing half-way with "database is locked".
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise StoreError(
                    f"cannot {what} in run store {self.path}: {exc}; {_hint(exc)} "
                    "(the store is unchanged by this call)"
                ) from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite rolls some failed transactions back by itself (e.g. on SQLITE_FULL).
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _read(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {what} from run store {self.path}: {exc}") from exc

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; further calls raise :class:`StoreError`. Closing twice is fine."""
        with self._lock:
            self._abandon()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> Any:
        # A connection cannot cross processes; say what to do instead of pickle's generic error.
        raise TypeError(
            f"a RunStore cannot be sent to another process; open RunStore({str(self.path)!r}) there"
        )

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"RunStore({str(self.path)!r}, {state})"

    # -- evaluations -------------------------------------------------------------------------

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

    # -- run metadata ------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Set one metadata entry (any JSON value), replacing an earlier one."""
        text = _dumps(value, what=f"metadata {key!r}")
        with self._write(f"set metadata {key!r}") as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_check_key(key), text))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """One metadata entry, or ``default`` when it was never set."""
        rows = self._read(f"metadata {key!r}", "SELECT value FROM meta WHERE key = ?", (key,))
        return self._loads(rows[0][0], f"metadata {key!r}") if rows else default

    def update_meta(self, key: str, update: Any) -> Any:
        """Read, change and write one metadata entry in one transaction; returns the new value.

        ``update(old)`` gets the current value (None when unset) and returns the new one; another
        process cannot write the entry in between (the check-then-write race of two new runs).
        """
        with self._write(f"update metadata {key!r}") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (_check_key(key),)).fetchone()
            value = update(None if row is None else self._loads(row[0], f"metadata {key!r}"))
            text = _dumps(value, what=f"metadata {key!r}")
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))
        return value

    def _loads(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"run store {self.path}: {what} is not valid JSON ({exc}); the file was changed outside "
                "slimforge: restore it or start a new run directory"
            ) from None

    # -- stages ------------------------------------------------------------------------------

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

    # -- measurement cache -------------------------------------------------------------------

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


# -- encoding -----------------------------------------------------------------------------------

_SELECT_EVAL = (
    "SELECT seq, key, genome, objectives, constraints, feasible, seconds, meta, created_at FROM evaluations"
)
_SELECT_STAGE = "SELECT name, status, outputs, updated_at, fingerprint FROM stages"


def _retry_busy(action: Any, timeout_s: float = _BUSY_TIMEOUT_S) -> None:
    """Run ``action``, retrying while SQLite says the database is locked.

    Switching the journal mode needs a moment of exclusive access and SQLite does not call its
    busy handler for it, so a store opened by two processes at once must wait here itself.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays (and anything else offering tolist/item) become plain JSON values;
    # checked by attribute so this module does not import numpy.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(value: Any, *, what: str = "value", sort_keys: bool = False) -> str:
    try:
        # allow_nan: NaN / Infinity objective values must round-trip; json.loads reads them back.
        return json.dumps(
            value, allow_nan=True, sort_keys=sort_keys, separators=(",", ":"), default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot store {what} as JSON ({exc}); use str/int/float/bool/None, lists and dicts with str keys"
        ) from exc


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"run store keys must be non-empty strings, got {key!r}")
    return key


def _check_genome(genome: Any) -> tuple[int, ...]:
    try:
        return tuple(operator.index(g) for g in genome)
    except TypeError:
        raise InvalidInputError(
            f"a genome must be a sequence of integer choice indices, got {genome!r}"
        ) from None


def _check_floats(values: Any, kind: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{kind}s must be a mapping of name to number, got {values!r}")
    out = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"{kind} names must be strings, got {name!r}")
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{kind} {name!r} must be a number, got {value!r}") from None
    return out


def _check_seconds(seconds: Any) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InvalidInputError(f"evaluation time must be a finite number of seconds >= 0, got {seconds!r}")
    return value


def _hint(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "full" in text:
        return "free some disk space and retry"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "check that you may write the file and its directory"
    if "locked" in text or "busy" in text:
        return "another process holds the store; wait for it or use another run directory"
    return "check the disk and the file"
