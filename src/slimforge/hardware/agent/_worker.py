"""The agent's side of the measuring process: start it, send it a request, kill it at the limit."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from slimforge.hardware.agent._protocol import HttpError

__all__ = ["MeasuringProcess"]

#: what :meth:`MeasuringProcess._read_line` returns when the child's output ended (it exited).
_GONE = object()
#: seconds a fresh measuring process may take to import its libraries (not part of a request's limit).
STARTUP_TIMEOUT_S = 120.0


class MeasuringProcess:
    """One child process (:mod:`._child`) that measures uploads, replaced whenever it overruns or dies.

    Not thread-safe: the agent calls it under its ``busy`` lock, one request at a time.

    Args:
        max_memory_bytes: address space the child may take beyond its idle size.
        startup_timeout_s: how long a new child may take to become ready.
    """

    def __init__(self, max_memory_bytes: int, *, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.max_memory_bytes = max_memory_bytes
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = b""
        self._ready = False
        #: child processes started so far (the first, then one per kill or crash).
        self.started = 0
        self._lock = threading.Lock()  # start() may race close() on shutdown

    @property
    def pid(self) -> int | None:
        """The current child's PID (None before the first start or after close)."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start a child unless one runs (returns at once; the child gets ready in the background)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self._discard()
            # The child's stderr goes to a file of its own, read back only to explain a failed start.
            self._stderr = tempfile.TemporaryFile(prefix="slimforge-agent-child-")  # noqa: SIM115 - lives with the child
            env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PYTHONUNBUFFERED": "1"}
            # glibc reserves 64 MiB of address space per thread arena; two keep the memory limit
            # about the model rather than about how many threads ONNX Runtime started.
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "slimforge.hardware.agent._child",
                    str(self.max_memory_bytes),
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                bufsize=0,
            )
            self._buffer = b""
            self._ready = False
            self.started += 1

    def measure(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The child's reply to ``request``; kills and replaces the child past ``timeout_s`` (504)."""
        for _ in range(2):  # a child found dead before it took the request: once more, with a new one
            self._wait_ready()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
                proc.stdin.flush()
            except OSError:
                self._restart()
                continue
            deadline = time.monotonic() + timeout_s
            accepted = self._read_line(deadline)
            if accepted is _GONE:
                self._restart()
                continue
            reply = accepted if accepted is None else self._read_line(deadline)
            if reply is None:
                self._restart()
                raise HttpError(
                    504,
                    f"the measurement took longer than this agent's limit of {timeout_s:g} s; "
                    "it was stopped and the agent serves on",
                )
            if reply is _GONE:
                code = proc.wait()
                self._restart()
                why = f"signal {-code}" if code < 0 else f"status {code}"
                raise HttpError(
                    500,
                    f"the measuring process died ({why}) on this model, e.g. out of memory or a crash in "
                    "ONNX Runtime; the agent serves on",
                )
            return reply
        raise HttpError(
            500, "the measuring process keeps ending before it takes a request; see the agent's log"
        )

    def close(self) -> None:
        """Stop the child (if any) and free its pipes."""
        with self._lock:
            self._discard()

    # -- internals -----------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        if self._ready:
            return
        line = self._read_line(time.monotonic() + self.startup_timeout_s)
        if not isinstance(line, dict) or not line.get("ready"):
            detail = self._stderr_tail()
            self._discard()
            raise HttpError(
                500,
                "the agent's measuring process did not start"
                + (f" ({detail})" if detail else "")
                + "; check the agent's Python environment",
            )
        self._ready = True

    def _read_line(self, deadline: float) -> Any:
        """The next JSON line from the child; None at the deadline, :data:`_GONE` when the child exited."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return _GONE  # end of file: the child exited (it may not be reapable yet)
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._restart()
            raise HttpError(500, "the measuring process answered garbage; it was replaced")
        return reply

    def _restart(self) -> None:
        with self._lock:
            self._discard()
        self.start()

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
        self._buffer = b""
        if proc is not None:
            if proc.poll() is None:
                proc.kill()  # SIGKILL: a model stuck in native code does not answer anything gentler
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-4000:].decode("utf-8", "replace")
            lines = [ln for ln in text.splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""
