"""Run directories have one owner and are made atomically; hostile or broken input is one line, exit 2."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from slimforge.cli import main
from slimforge.io import DirectoryLock, RunStore
from slimforge.runs import ConfigError, RunConfig, run_pipeline

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"
ACC = DATA / "accuracy_cifar10.csv"
PI5 = DATA / "device_pi5_onnxruntime.csv"
needs_tables = pytest.mark.skipif(not ACC.is_file(), reason="../shared/data/nb201 (reference tables) is absent")


def _config(budget: int = 20) -> dict:
    return {
        "data": "digits",
        "space": {"name": "nb201"},
        "accuracy": {"source": f"table:{ACC}"},
        "devices": [{"name": "ort", "spec": f"table:{PI5}", "cost": "table"}],
        "search": {"budget": budget},
        "retrain": {"mode": "scratch", "epochs": 0, "reference": []},
        "compress": {"recipe": "none"},
        "report_png": False,
    }


def _one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    return err


@pytest.mark.slow
@needs_tables
def test_a_second_process_on_a_live_run_directory_exits_2_naming_the_holder(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config()))
    out = tmp_path / "run"
    run_pipeline(RunConfig.from_dict(_config()), out, progress=False, log=lambda _: None, stop_after="search:ort")
    code = f"from slimforge.io import DirectoryLock; import time; DirectoryLock({str(out)!r}).acquire(); " \
           "print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _one_line_exit_2(capsys, ["run", str(path), "--out", str(out)], f"in use by process {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", str(path), "--out", str(out), "--wait", "--json"]) == 0  # free again: it resumes


@needs_tables
@pytest.mark.slow
def test_two_new_runs_into_one_directory_do_not_both_run(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config(budget=40)))
    out = tmp_path / "run"
    argv = [sys.executable, "-c", "import sys; from slimforge.cli import main; sys.exit(main())",
            "run", str(path), "--out", str(out), "--no-progress", "--threads", "1"]
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "in use by process" in loser and loser.count("\n") == 1 and "Traceback" not in loser
    with RunStore(out / "store.sqlite", create=False) as store:
        assert {s.status for s in store.stages()} == {"done"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # no temporary directory left


def test_a_crash_while_creating_the_run_directory_leaves_nothing(tmp_path, monkeypatch):
    import slimforge.runs.pipeline as pipeline

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "RunStore", broken)
    with pytest.raises(ConfigError, match="cannot create run directory .*No space left"):
        run_pipeline(RunConfig.from_dict({"search": {"budget": 5}}), tmp_path / "run", progress=False,
                     log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_run_into_a_read_only_directory_is_one_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("search: {budget: 5}\n")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _one_line_exit_2(capsys, ["run", str(path), "--out", str(locked / "run")], "choose a writable --out")
    finally:
        locked.chmod(0o700)


def test_run_into_a_path_that_cannot_be_a_directory_is_one_line(tmp_path, capsys):
    # (as root, read-only permissions do not stop writes; a file in the way does)
    path = tmp_path / "run.yaml"
    path.write_text("search: {budget: 5}\n")
    (tmp_path / "blocker").write_text("a file, not a directory")
    _one_line_exit_2(capsys, ["run", str(path), "--out", str(tmp_path / "blocker" / "run")],
                     "cannot create run directory")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"search: {budget: 5}\nname: \xff\xfe\n", "is not UTF-8 text"),
        (textwrap.dedent("""\
            a: &a [x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
            """).encode(), "uses a YAML alias"),
    ],
)
def test_hostile_or_broken_config_files_are_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "run.yaml"
    path.write_bytes(text)
    start = time.perf_counter()
    _one_line_exit_2(capsys, ["run", str(path), "--out", str(tmp_path / "out")], message)
    assert time.perf_counter() - start < 5 and not (tmp_path / "out").exists()


@pytest.mark.slow
@needs_tables
def test_a_store_row_of_invalid_json_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    run_pipeline(RunConfig.from_dict(_config()), out, progress=False, log=lambda _: None, stop_after="search:ort")
    with sqlite3.connect(out / "store.sqlite") as conn:
        conn.execute("UPDATE stages SET outputs = '{not json' WHERE name = 'search:ort'")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_config()))
    _one_line_exit_2(capsys, ["run", str(path), "--out", str(out)], "is not valid JSON")
    _one_line_exit_2(capsys, ["report", str(out)], "is not valid JSON")


def test_the_run_lock_is_the_directory_lock(tmp_path):
    # a run and a report see the same lock file: a report of a live run says "running", never "interrupted"
    from slimforge.io import lock_holder

    with DirectoryLock(tmp_path, what="run directory"):
        assert lock_holder(tmp_path) == os.getpid()
    assert lock_holder(tmp_path) is None
