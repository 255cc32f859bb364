"""Helper processes that end with their parent: no orphans left working after a ``kill -9``.

A worker started by slimforge (an executor's pool worker, the agent's measuring child) calls
:func:`exit_with_parent` first thing. The worker then ends when its parent does, however the
parent ended: the kernel sends a signal (Linux ``PR_SET_PDEATHSIG``, when the caller asks for
it), and a daemon thread watching the parent's PID ends the process otherwise.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent"]

_PR_SET_PDEATHSIG = 1
#: exit status of a worker whose parent is gone (what a shell reports for SIGHUP, 128 + 1).
ORPHAN_EXIT_STATUS = 129


def exit_with_parent(parent_pid: int, *, poll_s: float = 0.25, death_signal: bool = False) -> None:
    """End this process (``os._exit``) as soon as the process ``parent_pid`` is no longer its parent.

    Args:
        parent_pid: the PID of the parent this process serves (read by the parent, passed in).
        poll_s: how often the watching thread compares it with ``os.getppid()``.
        death_signal: also ask Linux for SIGKILL when the parent dies (immediate, and it reaches
            a process busy in native code). Only for children started by a thread that lives
            as long as the parent process: the kernel sends the signal when the *thread* that
            started the child ends.
    """
    if death_signal and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl here: the watching thread still ends the process
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT_STATUS)  # the parent died before this process got this far
    threading.Thread(
        target=_watch, args=(parent_pid, poll_s), name="slimforge-parent-watch", daemon=True
    ).start()


def _watch(parent_pid: int, poll_s: float) -> None:
    # A reparented process (to init or a subreaper) has lost the parent it was working for.
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(ORPHAN_EXIT_STATUS)
