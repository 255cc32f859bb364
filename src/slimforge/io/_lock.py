"""One owner per run directory or store: an exclusive ``flock`` held for the life of a process.

The lock is a file (``.slimforge.lock``) in the directory; the kernel drops the lock when the
holder exits, ``kill -9`` included, so a stale lock never needs clearing by hand. The file records
the holder's PID and command so the second process can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = ["LOCK_FILE", "DirectoryLock", "LockedError", "lock_holder"]

LOCK_FILE = ".slimforge.lock"


class LockedError(SlimforgeError):
    """Another process holds the directory; the message names its PID.

    Attributes:
        pid: the holder's process id as its lock file records it (None when unreadable); equal to
            ``os.getpid()`` when this very process holds the lock through another object, which
            lets a callee that found its caller's lock go on without a second one.
    """

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class DirectoryLock:
    """An exclusive lock on ``directory`` (created if missing), as a context manager.

    Args:
        directory: the run directory or search-store folder to own.
        wait: block until the holder exits instead of raising :class:`LockedError`.
        timeout_s: with ``wait``, give up after this many seconds (None: wait for ever).
        what: how the message names the directory ("run directory", "search store").
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        wait: bool = False,
        timeout_s: float | None = None,
        what: str = "directory",
    ) -> None:
        self.directory = Path(directory)
        self.wait = wait
        self.timeout_s = timeout_s
        self.what = what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.directory / LOCK_FILE

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        """Take the lock, or raise :class:`LockedError` naming the holder (see ``wait``)."""
        if self._fd is not None:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            # A read-only or missing parent, a file in the way: the caller's input, said in one line.
            raise InvalidInputError(
                f"cannot use {self.what} {self.directory} ({exc.strerror or exc}); "
                "give a directory this user can write"
            ) from None
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not self.wait or (deadline is not None and time.monotonic() >= deadline):
                        raise LockedError(*self._held_message(fd)) from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {' '.join(sys.argv)[:200]}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock (also done by the OS when the process ends)."""
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def _held_message(self, fd: int) -> tuple[str, int | None]:
        holder = _read_holder(fd)
        pid, _, command = holder.partition(" ")
        who = f"process {pid}" if pid.isdigit() else "another process"
        if command:
            who += f" ({command})"
        return (
            f"{self.what} {self.directory} is in use by {who}; wait for it to finish "
            "(or pass --wait), or use another directory"
        ), int(pid) if pid.isdigit() else None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int, settle_s: float = 1.0) -> str:
    """The holder's "PID command" line; waits up to ``settle_s`` for a holder that has just taken
    the lock and not yet written it (the window between ``flock`` and ``write``)."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
        except OSError:
            return ""
        if holder.partition(" ")[0].isdigit() or time.monotonic() >= deadline:
            return holder
        time.sleep(0.01)


def lock_holder(directory: str | os.PathLike) -> int | None:
    """The PID of the process holding ``directory``'s lock, or None when no live process holds it.

    Only reads: it never creates the lock file, so it works on a read-only run directory. A
    holder whose PID cannot be read gives -1. ``os.getpid()`` means this process holds it.
    """
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            head = _read_holder(fd).split(" ", 1)[0]
            return int(head) if head.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
