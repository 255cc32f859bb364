"""The storage tier: atomic writes leave the old file on failure, one lock owner, safe YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from slimforge.io import (
    DirectoryLock,
    LockedError,
    YamlError,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    load_yaml,
)


def test_atomic_json_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    path = atomic_write_text(tmp_path / "report.html", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    path.chmod(0o640)
    atomic_write_text(path, "y")  # a replaced file keeps its mode
    assert path.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_text(path, '{"old": true}\n')

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic_write_json(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_json_refuses_nan_before_touching_the_file(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_text(path, "{}\n")
    with pytest.raises(ValueError):
        atomic_write_json(path, {"x": float("nan")})
    assert path.read_text() == "{}\n"


def test_atomic_path_removes_temp_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "m.onnx", suffix=".onnx") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []


def test_second_lock_names_the_holder(tmp_path):
    with DirectoryLock(tmp_path, what="run directory"):
        with pytest.raises(LockedError, match=rf"in use by process {os.getpid()}"):
            DirectoryLock(tmp_path, what="run directory").acquire()
    with DirectoryLock(tmp_path):  # released: free again
        pass


def test_a_holder_that_has_not_written_its_pid_yet_is_still_named(tmp_path):
    # The window between the holder's flock and its PID write: the second process waits for the
    # line instead of saying "another process" (this made a CI run fail once).
    import fcntl
    import threading

    from slimforge.io import LOCK_FILE, lock_holder

    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        writer = threading.Timer(0.2, lambda: os.write(fd, b"4242 slimforge search\n"))
        writer.start()
        with pytest.raises(LockedError, match=r"in use by process 4242 \(slimforge search\)") as caught:
            DirectoryLock(tmp_path, what="run directory").acquire()
        writer.join()
        assert caught.value.pid == 4242
        assert lock_holder(tmp_path) == 4242
    finally:
        os.close(fd)


@pytest.mark.slow
def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    code = (
        "import sys, time; from slimforge.io import DirectoryLock; "
        f"DirectoryLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=str(child.pid)):
            DirectoryLock(tmp_path).acquire()
        child.kill()
        child.wait()
        with DirectoryLock(tmp_path, wait=True, timeout_s=10):
            pass
    finally:
        child.kill()


def test_yaml_refuses_aliases_and_bad_bytes():
    assert load_yaml("a: 1\nb: [x, y]\n") == {"a": 1, "b": ["x", "y"]}
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"
    with pytest.raises(YamlError, match=r"alias \(\*a\) at line 2"):
        load_yaml(bomb, source="cfg.yaml")
    with pytest.raises(YamlError, match="not UTF-8"):
        load_yaml(b"data: \xff\xfe\n", source="cfg.yaml")
    with pytest.raises(YamlError, match="at line 2"):
        load_yaml("a: 1\n  b: [\n", source="cfg.yaml")


def test_progress_without_a_terminal_prints_plain_lines_with_eta(monkeypatch):
    import io as std_io

    from slimforge.io import LineProgress, progress_bar

    clock = [0.0]
    monkeypatch.setattr("slimforge.io._progress.time.monotonic", lambda: clock[0])
    out = std_io.StringIO()
    bar = progress_bar(total=60, desc="retrain m", unit="step", file=out)
    assert isinstance(bar, LineProgress)
    for step in range(60):
        clock[0] = step * 1.0
        bar.set_postfix(epoch=f"{step // 12 + 1}/5", loss="0.8")
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 7  # one line per 10 s of a 59 s job, plus the last
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("retrain m:  18% (11/60 step) 0:10 elapsed, ETA 0:45, epoch=1/5")
    assert lines[-1].startswith("retrain m: 100% (60/60 step)")


def test_progress_disabled_is_silent():
    import io as std_io

    from slimforge.io import progress_bar

    out = std_io.StringIO()
    with progress_bar(total=3, file=out, enabled=False, interval_s=0) as bar:
        bar.update(3)
    assert out.getvalue() == ""
