"""Issue 17 for searches: one owner per search store, result.json written atomically, bounded populations."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError
from slimforge.io import DirectoryLock, LockedError, RunStore
from slimforge.search import make_algorithm
from slimforge.search.algorithms import MAX_POPULATION
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    rng = np.random.default_rng(4)
    root = tmp_path_factory.mktemp("hardening")
    genomes = list(itertools.product(range(5), repeat=6))
    write_arch_table(
        root / "acc.csv",
        [(i, SPACE.to_string(g), [rng.uniform(40, 95)]) for i, g in enumerate(genomes)],
        ["accuracy"],
    )
    write_arch_table(
        root / "dev.csv",
        [(i, SPACE.to_string(g), [rng.uniform(1, 9)]) for i, g in enumerate(genomes)],
        ["latency_ms"],
    )
    return root


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "search", "--space", "nb201", "--objectives", "error,latency_ms", "--accuracy-table",
        str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}", "--no-progress", *extra,
    ]  # fmt: skip


# A search slowed down (each batch sleeps) so that a second process meets it while it runs.
_SLOW_SEARCH = """
import sys, time
import slimforge.search
m = sys.modules["slimforge.search.minimize"]  # the package re-exports the function under this name
real = m._evaluate
def slow(*args, **kwargs):
    time.sleep(0.3)
    return real(*args, **kwargs)
m._evaluate = slow
from slimforge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _wait_for_holder(lock_file: Path, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    pid = process.pid
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if lock_file.exists() and lock_file.read_text().startswith(f"{pid} "):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never took {lock_file}")


@pytest.mark.slow
def test_a_second_resume_exits_2_naming_the_holder_and_wait_waits(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(tables, "--budget", "30", "--out", str(out))) == 0
    capsys.readouterr()
    argv = _args(tables, "--budget", "150", "--out", str(out), "--resume", "--json")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SEARCH, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        _wait_for_holder(out / ".slimforge.lock", first)
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"in use by process {first.pid}" in err and "--wait" in err
        # --wait blocks until the first resume ends, then finds everything evaluated.
        assert main([*argv, "--wait"]) == 0
        assert first.wait(60) == 0
    finally:
        first.kill()
        first.wait()
    second = json.loads(capsys.readouterr().out)
    assert second["num_evaluations"] == 150 and second["num_resumed"] == 150
    with RunStore(out / "store.sqlite", create=False) as store:
        assert len(store) == 150  # nothing evaluated twice, no rows of another search


@pytest.mark.slow
def test_two_new_searches_into_one_store_do_not_interleave(tables, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SLOW_SEARCH,
                *_args(tables, "--budget=60", f"--seed={seed}", "--out", out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2]
    loser = next(err for code, err in results if code == 2).strip()
    assert len(loser.splitlines()) == 1
    assert "in use by process" in loser or "already holds a search" in loser
    with RunStore(out / "store.sqlite", create=False) as store:
        assert len(store) == 60
        assert store.get_meta("search")["seed"] in (1, 2)


@pytest.mark.slow
def test_the_search_api_refuses_a_store_another_process_owns(tables, tmp_path):
    from slimforge.search import build_problem, minimize

    code = (
        "import time; from slimforge.io import DirectoryLock; "
        f"DirectoryLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        problem = build_problem(
            "nb201", "error,latency_ms", accuracy_table=tables / "acc.csv", device=f"table:{tables}/dev.csv"
        )
        with RunStore(tmp_path / "store.sqlite") as store:
            with pytest.raises(LockedError, match=f"search store .* in use by process {holder.pid}"):
                minimize(problem, "random", budget=5, store=store)
            assert len(store) == 0
            # The same process owning the directory (as the CLI does) is its caller's lock: allowed.
            holder.kill()
            holder.wait()
            with DirectoryLock(tmp_path):
                assert minimize(problem, "random", budget=5, store=store).num_evaluations == 5
    finally:
        holder.kill()
        holder.wait()


def test_a_full_disk_on_result_json_is_one_line_and_keeps_the_old_file(tables, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(_args(tables, "--budget", "20", "--out", str(out))) == 0
    before = (out / "result.json").read_text()
    capsys.readouterr()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(_args(tables, "--budget", "30", "--out", str(out), "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "result.json" in err and "No space left" in err and "--resume" in err
    assert (out / "result.json").read_text() == before  # the old result, whole
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".result")) == []
    monkeypatch.undo()
    assert main(_args(tables, "--budget", "30", "--out", str(out), "--resume")) == 0
    assert json.loads((out / "result.json").read_text())["num_evaluations"] == 30


def test_out_that_cannot_be_created_is_one_line(tables, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(_args(tables, "--budget", "5", "--out", str(blocker / "run"))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(blocker / "run") in err
    assert main(_args(tables, "--budget", "5", "--wait")) == 2
    assert "--wait goes with --out" in capsys.readouterr().err


# ---- populations bounded by the space ----------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "setting"),
    [
        ("nsga2", "pop_size"),
        ("nsga2", "n_crossover"),
        ("wsea", "num_calibration"),
        ("random", "batch_size"),
        ("regularized_evolution", "population_size"),
        ("pls", "n_init"),
    ],
)
def test_a_population_beyond_the_space_is_one_line(algorithm, setting):
    started = time.perf_counter()
    with pytest.raises(InvalidInputError) as info:
        make_algorithm(algorithm, SPACE, **{setting: 10**9})
    message = str(info.value)
    assert "\n" not in message and setting in message and "1,000,000,000" in message
    assert "15,625" in message
    with pytest.raises(InvalidInputError, match="15,625 architectures"):
        make_algorithm(algorithm, SPACE, **{setting: 20_000})
    assert time.perf_counter() - started < 1.0


def test_population_cap_is_documented_and_the_cli_says_so(tables, capsys):
    assert MAX_POPULATION >= 10_000
    assert main(_args(tables, "--budget", "20", "--set", "pop_size=1000000000")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pop_size" in err
