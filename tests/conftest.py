"""Fixtures shared by the whole suite (a package's own live in its folder's conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

# -- tests that run in a child pytest process ---------------------------------------------------
#
# A test marked ``isolated`` drives a local Ray instance, whose C++ core can end the *whole process*
# (a failed internal check exits with status 1 and no report). In the suite's own process that took
# every later test with it, silently: CI stopped at 59 % (the cause, since fixed, was ray.cancel
# racing a finishing task; BENCHMARKS.md, issue 18). So the isolated tests of each module run
# together in one child pytest: they share their module-scoped fixtures there as before, the rest of
# the suite goes on whatever the child does, and a failure or a crash shows the child's own output.
# The child captures only Python-level output (--capture=sys), so a native library's last words on
# file descriptor 2 reach that output instead of dying in pytest's capture buffer; the GCS and
# raylet logs a crashed Ray leaves in /tmp are appended. Nothing is retried.

_ISOLATED_CHILD = "SLIMFORGE_TEST_ISOLATED_CHILD"
_ISOLATED_TIMEOUT_S = 1200
# pytest's last line, e.g. "3 passed, 1 skipped in 8.20s" (framed by "=" unless -q)
_SUMMARY = re.compile(r"^=* ?\d+ (passed|failed|skipped|errors?|deselected)\b.* in [0-9.]+s\b", re.MULTILINE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "isolated: run in a child pytest process with the module's other isolated tests "
        "(tests whose library can end the process, e.g. a local Ray instance)",
    )


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(_ISOLATED_CHILD):
        return
    groups: dict[pytest.Module, list[pytest.Item]] = {}
    kept: list[pytest.Item] = []
    for item in items:
        module = item.getparent(pytest.Module)
        if item.get_closest_marker("isolated") is None or module is None:
            kept.append(item)
        elif module not in groups:
            groups[module] = [item]
            kept.append(_IsolatedGroup.from_parent(module, name="[isolated]", members=groups[module]))
        else:
            groups[module].append(item)
    items[:] = kept


class _IsolatedGroup(pytest.Item):
    """The isolated tests of one module, run by a child ``pytest`` (see the comment above)."""

    def __init__(self, *, members: list[pytest.Item], **kwargs) -> None:
        super().__init__(**kwargs)
        self.members = members
        if any(item.get_closest_marker("slow") for item in members):
            self.add_marker("slow")  # as slow as its slowest member, for `-m "not slow"`

    def runtest(self) -> None:
        before = _ray_logs()
        child = self._run_child()
        if child.returncode != 0:
            out = child.stdout
            if not _SUMMARY.search(out):  # it died before its report
                out += "".join(
                    f"\n--- {log}:\n{_tail(log.read_text(errors='replace'), 20)}"
                    for log in sorted(_ray_logs() - before)
                )
            raise _ChildFailed(child.returncode, out)
        skipped = re.findall(r"^SKIPPED \[\d+\] (.*)$", child.stdout, re.MULTILINE)
        if skipped and not re.search(r"\d+ passed", child.stdout):
            pytest.skip("; ".join(skipped))
        for line in skipped:  # some ran, some did not: say which and why
            warnings.warn(pytest.PytestWarning(f"in the child pytest of {self.nodeid}: {line}"))

    def _run_child(self) -> subprocess.CompletedProcess:
        ids = [item.nodeid for item in self.members]
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rA", "--capture=sys", "-p", "no:cacheprovider", *ids],
            check=False,
            cwd=self.config.rootpath,
            env={**os.environ, _ISOLATED_CHILD: "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_ISOLATED_TIMEOUT_S,
        )

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, _ChildFailed):
            status, out = excinfo.value.args
            return f"the child pytest ended with status {status}; its output:\n{_tail(out, 200)}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{len(self.members)} isolated tests of {self.path.name}"


class _ChildFailed(Exception):
    pass


def _ray_logs() -> set[Path]:
    """Ray's GCS and raylet logs in the tests' session folders (/tmp/sf*-*), which outlive a child
    that Ray ended: they say why the GCS stopped answering."""
    return {
        log
        for log in Path("/tmp").glob("sf*-*/session_2*/logs/*")
        if log.name in ("gcs_server.out", "gcs_server.err", "raylet.out", "raylet.err")
    }


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, restored after.

    The suite's networks are tiny and the machines running it are shared (2 cores): more threads only
    spin against each other (up to 10x slower). A file opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress as one plain line per update: captured stderr is not a terminal, and the lines'
    10-second interval would print nothing in a test. For tests that check progress is shown."""
    monkeypatch.setenv("SLIMFORGE_PROGRESS_INTERVAL_S", "0")


@pytest.fixture(scope="session")
def tiny_npz_factory(tmp_path_factory: pytest.TempPathFactory):
    """``make(num_train)``: an ``npz:`` spec of random 3x16x16 images, 4 classes, ``num_train`` training
    and 8 test images (seed 0), written once per size for the session."""
    import numpy as np

    made: dict[int, str] = {}

    def make(num_train: int) -> str:
        if num_train not in made:
            rng = np.random.default_rng(0)
            path = tmp_path_factory.mktemp("data") / "tiny.npz"
            np.savez(
                path,
                x_train=rng.integers(0, 256, (num_train, 3, 16, 16), dtype=np.uint8),
                y_train=np.arange(num_train, dtype=np.int64) % 4,
                x_test=rng.integers(0, 256, (8, 3, 16, 16), dtype=np.uint8),
                y_test=np.arange(8, dtype=np.int64) % 4,
            )
            made[num_train] = f"npz:{path}"
        return made[num_train]

    return make
