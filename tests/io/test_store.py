"""Tests of slimforge.io.RunStore: the SQLite run store."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.io import (
    SCHEMA_VERSION,
    EvaluationRecord,
    RunStore,
    StageRecord,
    StoreError,
    canonical_json,
)


def _put(store: RunStore, key: str, **overrides) -> None:
    kwargs = {"genome": [1, 0, 2], "objectives": {"err": 0.25, "latency_ms": 3.5},
              "constraints": {"params": -10.0}, "feasible": True, "seconds": 0.5}
    kwargs.update(overrides)
    store.put_evaluation(key, **kwargs)


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "store.sqlite") as s:
        yield s


def test_evaluation_round_trip_keeps_every_field(store):
    _put(store, "a", meta={"epoch": 3, "tags": ["x", "y"], "nested": {"k": None}})
    rec = store.get_evaluation("a")
    assert rec.key == "a" and rec.seq == 1
    assert rec.genome == (1, 0, 2)
    assert rec.objectives == {"err": 0.25, "latency_ms": 3.5}
    assert rec.constraints == {"params": -10.0}
    assert rec.feasible is True and rec.seconds == 0.5
    assert rec.meta == {"epoch": 3, "tags": ["x", "y"], "nested": {"k": None}}
    assert abs(rec.created_at - time.time()) < 60
    assert store.get_evaluation("missing") is None


def test_non_finite_objectives_round_trip(store):
    _put(store, "a", objectives={"err": math.nan, "lat": math.inf}, constraints={"c": -math.inf},
         meta={"cv": math.nan})
    rec = store.get_evaluation("a")
    assert math.isnan(rec.objectives["err"]) and rec.objectives["lat"] == math.inf
    assert rec.constraints["c"] == -math.inf and math.isnan(rec.meta["cv"])


def test_numpy_values_are_stored_as_plain_numbers(store):
    _put(store, "a", genome=np.array([3, 1], dtype=np.int64),
         objectives={"err": np.float32(0.5)}, meta={"arr": np.arange(3), "s": np.float64(2.0)})
    rec = store.get_evaluation("a")
    assert rec.genome == (3, 1) and all(type(g) is int for g in rec.genome)
    assert rec.objectives == {"err": 0.5}
    assert rec.meta == {"arr": [0, 1, 2], "s": 2.0}


def test_put_is_idempotent_and_keeps_first_result(store):
    _put(store, "a", objectives={"err": 0.1})
    _put(store, "a", objectives={"err": 0.9})
    store.put_evaluations([
        EvaluationRecord.new(key, genome=[g], objectives={"err": err}, constraints={}, feasible=True,
                             seconds=0)
        for key, g, err in [("b", 0, 0.2), ("b", 1, 0.8), ("a", 2, 0.7)]
    ])
    assert len(store) == 2
    assert store.get_evaluation("a").objectives == {"err": 0.1}
    assert store.get_evaluation("b").genome == (0,)


def test_evaluations_in_insertion_order_and_since(store):
    keys = ["z", "m", "a", "q"]
    for k in keys:
        _put(store, k)
    recs = store.evaluations()
    assert [r.key for r in recs] == keys
    assert [r.seq for r in recs] == sorted(r.seq for r in recs)
    assert [r.key for r in store.evaluations(since=recs[1].seq)] == ["a", "q"]
    assert "m" in store and "nope" not in store and 3 not in store


def test_threads_share_one_store(store):
    def write(t):
        for i in range(25):
            _put(store, f"t{t}-{i}", genome=[t, i])
            store.set_meta(f"thread{t}", i)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(store) == 100
    assert [store.get_meta(f"thread{t}") for t in range(4)] == [24] * 4
    assert {r.genome for r in store.evaluations()} == {(t, i) for t in range(4) for i in range(25)}


def test_put_evaluations_empty_is_a_no_op(store):
    store.put_evaluations([])
    assert len(store) == 0
    assert store  # an empty store is still a store, not a falsy container


def test_bad_inputs_raise_and_store_nothing(store):
    with pytest.raises(InvalidInputError, match="genome"):
        _put(store, "a", genome=[1.5, 2])
    with pytest.raises(InvalidInputError, match="'err'"):
        _put(store, "a", objectives={"err": "high"})
    with pytest.raises(InvalidInputError, match="JSON"):
        _put(store, "a", meta={"model": object()})
    with pytest.raises(InvalidInputError, match="seconds"):
        _put(store, "a", seconds=-1)
    with pytest.raises(InvalidInputError, match="keys"):
        _put(store, "")
    with pytest.raises(InvalidInputError, match="EvaluationRecord"):
        store.put_evaluations([{"key": "a"}])
    assert len(store) == 0


def test_record_round_trips_through_json():
    rec = EvaluationRecord(seq=4, key="k", genome=(1, 2), objectives={"err": math.inf},
                           constraints={"c": 0.0}, feasible=False, seconds=1.5, meta={"m": [1]},
                           created_at=12.0)
    back = EvaluationRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec
    stage = StageRecord(name="search", status="done", outputs={"front": [1, 2]}, updated_at=3.0)
    assert StageRecord.from_dict(json.loads(json.dumps(stage.to_dict()))) == stage


def test_meta_set_get_replace(store):
    assert store.get_meta("seed") is None
    assert store.get_meta("seed", 7) == 7
    store.set_meta("seed", 0)
    store.set_meta("config", {"algorithm": "nsga2", "pop": 20, "objectives": ["err", "lat"]})
    store.set_meta("seed", 42)
    assert store.get_meta("seed") == 42
    assert store.get_meta("config") == {"algorithm": "nsga2", "pop": 20, "objectives": ["err", "lat"]}


def test_stages_status_and_outputs(store):
    store.set_stage("supernet", "running")
    store.set_stage("search", "pending")
    store.set_stage("supernet", "done", {"checkpoint": "supernet.pt"})
    assert store.get_stage("supernet").status == "done"
    assert store.get_stage("supernet").outputs == {"checkpoint": "supernet.pt"}
    assert store.get_stage("nope") is None
    assert [s.name for s in store.stages()] == ["supernet", "search"]
    with pytest.raises(InvalidInputError, match="finished"):
        store.set_stage("search", "finished")
    assert store.get_stage("search").status == "pending"


def test_measurement_cache_keyed_by_canonical_conditions(store):
    cond = {"runtime": "onnxruntime", "threads": 1, "shape": (1, 3, 32, 32), "batch": 1}
    assert store.get_measurement(cond) is None
    store.put_measurement(cond, {"latency_ms": 1.25, "iqr_ms": 0.1})
    reordered = {"batch": 1, "shape": [1, 3, 32, 32], "threads": 1, "runtime": "onnxruntime"}
    assert store.get_measurement(reordered) == {"latency_ms": 1.25, "iqr_ms": 0.1}
    assert store.get_measurement({**cond, "threads": 4}) is None
    store.put_measurement(cond, {"latency_ms": 1.5})
    assert store.get_measurement(cond) == {"latency_ms": 1.5}
    assert canonical_json({"b": 1, "a": (1, 2)}) == '{"a":[1,2],"b":1}'


def test_store_persists_and_creates_parent_directory(tmp_path):
    path = tmp_path / "run" / "deeper" / "store.sqlite"
    with RunStore(path) as s:
        _put(s, "a")
        s.set_meta("space", "nb201")
    with RunStore(path, create=False) as s:
        assert [r.key for r in s.evaluations()] == ["a"]
        assert s.get_meta("space") == "nb201"
        mode = s._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_missing_store_without_create_is_refused(tmp_path):
    with pytest.raises(StoreError, match="no run store at .*missing.sqlite"):
        RunStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "store.sqlite"
    RunStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as err:
        RunStore(path)
    msg = str(err.value)
    assert str(path) in msg and f"version {SCHEMA_VERSION + 1}" in msg
    assert f"supports version {SCHEMA_VERSION}" in msg


def test_foreign_files_are_refused_and_left_alone(tmp_path):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a slimforge run store.*users"):
        RunStore(other)
    con = sqlite3.connect(other)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 100)
    with pytest.raises(StoreError, match="notes.txt"):
        RunStore(text)
    with pytest.raises(StoreError, match="directory"):
        RunStore(tmp_path)


def test_closed_store_raises(tmp_path):
    s = RunStore(tmp_path / "s.sqlite")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        len(s)
    with pytest.raises(StoreError, match="closed"):
        _put(s, "a")
    assert issubclass(StoreError, SlimforgeError)


def test_store_cannot_be_pickled(store):
    with pytest.raises(TypeError, match="open RunStore"):
        pickle.dumps(store)


def test_disk_full_raises_with_path_and_keeps_store_consistent(store):
    _put(store, "kept")
    # Cap the file at its current size: any growing write fails with SQLITE_FULL, as on a full disk.
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count={pages}")
    big = [EvaluationRecord.new(f"big{i}", genome=[i], objectives={}, constraints={}, feasible=True,
                                seconds=0, meta={"blob": "x" * 20_000}) for i in range(5)]
    with pytest.raises(StoreError) as err:
        store.put_evaluations(big)
    assert str(store.path) in str(err.value) and "full" in str(err.value)
    assert [r.key for r in store.evaluations()] == ["kept"]
    store._conn.execute("PRAGMA max_page_count=1073741823")
    store.put_evaluations(big)
    assert len(store) == 6
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_write_refused_by_database_raises_store_error(store):
    _put(store, "kept")
    store._conn.execute("PRAGMA query_only=ON")  # as a read-only file would
    with pytest.raises(StoreError, match="store.sqlite.*readonly"):
        store.set_meta("seed", 1)
    with pytest.raises(StoreError, match="readonly"):
        _put(store, "new")
    assert [r.key for r in store.evaluations()] == ["kept"]


# A writer in another process. Each batch of BATCH rows is one put_evaluations call; each row's
# meta carries a digest of its payload, so a torn row would show.
_WRITER = textwrap.dedent("""
    import hashlib, os, sys
    from slimforge.io import EvaluationRecord, RunStore
    import time
    path, prefix, batches, exit_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    go, pause = sys.argv[5], float(sys.argv[6])
    BATCH = 4
    store = RunStore(path)
    # A tiny page cache makes SQLite spill uncommitted pages into the WAL mid-transaction,
    # so a kill inside a transaction leaves partial frames on disk for recovery to ignore.
    store._conn.execute("PRAGMA cache_size=2")
    inserts = 0
    def trace(sql):
        global inserts
        if sql.startswith("INSERT"):
            inserts += 1
            if inserts == exit_at:
                os._exit(3)
    store._conn.set_trace_callback(trace)
    print("ready", flush=True)
    while go and not os.path.exists(go):
        time.sleep(0.005)
    for b in range(batches):
        rows = []
        for i in range(BATCH):
            key = f"{prefix}-{b}-{i}"
            blob = (key * 4000)[:12000]
            rows.append(EvaluationRecord.new(key, genome=[b, i], objectives={"err": b + i / 10},
                        constraints={}, feasible=True, seconds=0.0,
                        meta={"blob": blob, "sha": hashlib.sha256(blob.encode()).hexdigest()}))
        store.put_evaluations(rows)
        print(b, flush=True)
        time.sleep(pause)
    store.close()
""")
_BATCH = 4


def _writer(path, prefix, batches, exit_at=0, go="", pause=0.0):
    args = [str(path), prefix, str(batches), str(exit_at), str(go), str(pause)]
    return subprocess.Popen([sys.executable, "-c", _WRITER, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_whole(path, prefix=None):
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with RunStore(path, create=False) as s:
        recs = s.evaluations()
    batches: dict[tuple[str, int], list[int]] = {}
    for r in recs:
        assert hashlib.sha256(r.meta["blob"].encode()).hexdigest() == r.meta["sha"]
        pre, b, i = r.key.rsplit("-", 2)
        assert r.genome == (int(b), int(i)) and r.meta["blob"].startswith(r.key)
        batches.setdefault((pre, int(b)), []).append(int(i))
    for members in batches.values():
        assert members == list(range(_BATCH))  # every transaction whole, none partial
    if prefix is not None:
        assert sorted(b for p, b in batches if p == prefix) == list(range(len(batches)))
    return recs


@pytest.mark.slow
def test_process_exiting_inside_a_transaction_leaves_only_whole_batches(tmp_path):
    path = tmp_path / "store.sqlite"
    proc = _writer(path, "w", batches=10, exit_at=3 * _BATCH + 3)  # dies on the 3rd row of batch 3
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    # the torn batch did reach the disk (spilled into the WAL) and recovery must ignore it
    assert b"w-3-0" in (tmp_path / "store.sqlite-wal").read_bytes()
    recs = _assert_whole(path, "w")
    assert len(recs) == 3 * _BATCH


@pytest.mark.slow
def test_killed_writer_with_concurrent_reader(tmp_path):
    path = tmp_path / "store.sqlite"
    proc = _writer(path, "w", batches=100_000)
    seen = []
    deadline = time.monotonic() + 30
    try:
        proc.stdout.readline()  # "ready"
        proc.stdout.readline()  # the first batch is stored
        with RunStore(path, create=False) as reader:
            while time.monotonic() < deadline and (len(set(seen)) < 5 or seen[-1] < 40 * _BATCH):
                n = len(reader)
                assert n % _BATCH == 0  # a reader never sees half a transaction
                seen.append(n)
                time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert seen == sorted(seen) and seen[-1] >= 40 * _BATCH and len(set(seen)) >= 5
    recs = _assert_whole(path, "w")
    assert len(recs) >= seen[-1]


@pytest.mark.slow
def test_two_writer_processes_interleave_without_loss(tmp_path):
    path = tmp_path / "store.sqlite"
    go = tmp_path / "go"
    procs = [_writer(path, p, batches=30, go=go, pause=0.002) for p in ("a", "b")]
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    go.touch()  # both hold the store open; start writing together
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    recs = _assert_whole(path)
    assert len(recs) == 2 * 30 * _BATCH
    order = "".join(r.key[0] for r in recs)
    assert "ab" in order and "ba" in order  # the writers did contend for the store


@pytest.mark.slow
def test_processes_creating_one_store_at_once_all_succeed(tmp_path):
    # Processes that create the same new store race on the schema and on switching to WAL;
    # all must end up with the same valid store, never "not a run store" or "locked".
    opener = textwrap.dedent("""
        import os, sys, time
        from slimforge.io import RunStore
        print("ready", flush=True)
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.001)
        RunStore(sys.argv[1]).close()
    """)
    for k in range(10):
        path, go = tmp_path / f"s{k}.sqlite", tmp_path / f"go{k}"
        procs = [
            subprocess.Popen([sys.executable, "-c", opener, str(path), str(go)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        go.touch()
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        with RunStore(path, create=False) as store:
            assert len(store) == 0
