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
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slimforge.io._store_records import StoreError, _check_key, _dumps, _hint
from slimforge.io._store_tables import STAGE_STATUSES, EvaluationTable, MeasurementTable, StageTable

__all__ = ["SCHEMA_VERSION", "STAGE_STATUSES", "RunStore"]

SCHEMA_VERSION = 1
# Written to the SQLite header (PRAGMA application_id) so that any other SQLite file is told
# apart from a run store without guessing from table names. 0x534C4647 is "SLFG" in ASCII.
APPLICATION_ID = 0x534C4647
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


class RunStore(EvaluationTable, StageTable, MeasurementTable):
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
