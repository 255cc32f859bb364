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
