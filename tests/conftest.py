"""Fixtures shared by the whole suite (a package's own live in its folder's conftest.py)."""

from __future__ import annotations

import pytest
import torch


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
