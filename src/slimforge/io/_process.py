"""Helper processes that end with their parent: no orphans left working after a ``kill -9``.

A worker started by slimforge (an executor's pool worker, the agent's measuring child) calls
:func:`exit_with_parent` first thing; a daemon thread then ends the worker as soon as its parent
is gone, however the parent ended.

Linux's ``prctl(PR_SET_PDEATHSIG)`` is not used: the kernel sends that signal when the *thread*
that started the child ends, not the process, and both the process pool (which starts workers
from whichever thread calls ``map``) and the agent (which restarts its measuring process from a
request's thread) start children from threads that end long before their parent does.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["ORPHAN_EXIT_STATUS", "exit_with_parent"]

#: exit status of a worker whose parent is gone (what a shell reports for SIGHUP, 128 + 1).
ORPHAN_EXIT_STATUS = 129


def exit_with_parent(parent_pid: int, *, poll_s: float = 0.25) -> None:
    """End this process (``os._exit``) as soon as the process ``parent_pid`` is no longer its parent.

    Args:
        parent_pid: the PID of the parent this process serves (read by the parent, passed in).
        poll_s: how often the watching thread compares it with ``os.getppid()``.
    """
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT_STATUS)  # the parent died before this process got this far
    threading.Thread(
        target=_watch, args=(parent_pid, poll_s), name="slimforge-parent-watch", daemon=True
    ).start()


def _watch(parent_pid: int, poll_s: float) -> None:
    # A reparented process (to init or a subreaper) has lost the parent it was working for. The
    # thread needs the GIL, which native code (ONNX Runtime, torch kernels) releases while it runs.
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(ORPHAN_EXIT_STATUS)
