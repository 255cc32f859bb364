"""The agent's HTTP server: authenticates, bounds and answers every request; measures in a child process."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from slimforge import __version__
from slimforge.errors import InvalidInputError
from slimforge.hardware.agent._protocol import (
    API_VERSION,
    SETTINGS_HEADER,
    AgentLimits,
    HttpError,
    Settings,
    check_token,
    parse_settings,
    served_runtimes,
)
from slimforge.hardware.agent._worker import MeasuringProcess
from slimforge.hardware.devices import DeviceError, local_info

__all__ = ["AgentServer"]

# A refused upload is read and dropped after the reply (up to this much, within the read
# timeout), so that the client finishes sending and reads the status instead of a reset.
_MAX_DRAIN_BYTES = 1 << 30
#: uploads held in memory at once; more concurrent uploads get 503 (with the body dropped).
_MAX_UPLOADS_IN_MEMORY = 2
_BUSY = "the agent is measuring another model; retry shortly"
_FULL = "the agent is serving as many connections as it takes; retry shortly"


class AgentServer:
    """The agent's HTTP server (standard library ``ThreadingHTTPServer``); binds on construction.

    Args:
        token: the shared secret clients must send as ``Authorization: Bearer TOKEN`` (at least
            16 characters).
        host: address to listen on; loopback unless the device is to be reached from elsewhere.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        limits: what the agent bounds (:class:`AgentLimits`); its fields may also be given as
            keywords (``max_seconds=30``), which override ``limits``.
        log: where to write one line per request (None: silent).

    Use :meth:`serve_forever` in the foreground, or ``with AgentServer(...) as server:`` to serve
    from a background thread until the block ends.
    """

    def __init__(
        self,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: AgentLimits | None = None,
        log: TextIO | None = None,
        **overrides: Any,
    ) -> None:
        self._token = check_token(token, "the agent's token", serving=True).encode("ascii")
        known = {f.name for f in dataclasses.fields(AgentLimits)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidInputError(
                f"AgentServer has no limit {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        self.limits = replace(limits or AgentLimits(), **overrides)
        self.log = log
        #: held while one upload is measured; a request that finds it taken gets 503 at once.
        self.busy = threading.Lock()
        self._uploads = threading.BoundedSemaphore(_MAX_UPLOADS_IN_MEMORY)
        self._connections = threading.BoundedSemaphore(self.limits.max_connections)
        #: uploads this agent has started to measure (a refused request never counts).
        self.measured = 0
        self.info = replace(local_info("agent", "onnxruntime"), name=f"agent@{socket.gethostname()}")
        #: the runtimes this agent measures uploads with (``/v1/info``), by name.
        self.runtimes = {r["name"]: r for r in served_runtimes()}
        self.worker = MeasuringProcess(self.limits.max_memory_bytes)
        try:
            self._httpd = _Server((host, port), _Handler)
        except OSError as exc:
            raise DeviceError(
                f"cannot listen on {host}:{port} ({exc}); choose another --port or --host"
            ) from None
        self._httpd.agent = self
        self._tmp = Path(tempfile.mkdtemp(prefix="slimforge-agent-"))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` the server listens on."""
        host, port = self._httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    @property
    def max_upload_bytes(self) -> int:
        """Larger uploads get 413."""
        return self.limits.max_upload_bytes

    @property
    def max_seconds(self) -> float:
        """The time limit of one measurement."""
        return float(self.limits.max_seconds)

    def serve_forever(self) -> None:
        """Serve requests until :meth:`shutdown` (from another thread) or KeyboardInterrupt."""
        self.worker.start()  # imports in the background, so the first request does not wait long
        self._httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop serving, close the socket and end the measuring process."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        self.worker.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> AgentServer:
        self._thread = threading.Thread(target=self.serve_forever, name="slimforge-agent", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- what the handler calls --------------------------------------------------------------

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (constant-time comparison)."""
        scheme, _, given = (header or "").partition(" ")
        # compare_digest on equal-typed bytes; a wrong scheme still goes through the comparison.
        ok = hmac.compare_digest(given.strip().encode("utf-8", "replace"), self._token)
        return ok and scheme.lower() == "bearer"

    def describe(self) -> dict[str, Any]:
        """The ``/v1/info`` reply."""
        return {
            "api": API_VERSION,
            "slimforge": __version__,
            "device": self.info.to_dict(),
            "limits": self.limits.to_dict(),
            "runtimes": list(self.runtimes.values()),
        }

    def settings(self, header: str | None) -> Settings:
        """Parse and check the settings header against the limits; a bad one raises a 400."""
        return parse_settings(header, self.limits, tuple(self.runtimes))

    def runtime_info(self, runtime: str) -> Any:
        """The device description of measurements taken with ``runtime``."""
        entry = self.runtimes[runtime]
        return replace(
            self.info, runtime=runtime, runtime_version=entry["version"], delegate=entry["delegate"]
        )

    def measure(self, data: bytes, settings: Settings) -> dict[str, Any]:
        """Measure an uploaded model in the measuring process (the caller holds :attr:`busy`)."""
        self.measured += 1
        # The upload keeps its format's suffix (OpenVINO takes .onnx uploads: its IR is two files).
        suffix = self.runtimes[settings.runtime]["suffixes"][-1 if settings.runtime == "openvino" else 0]
        path = self._tmp / f"upload-{self.measured}{suffix}"
        path.write_bytes(data)
        try:
            request = {
                **settings.to_dict(),
                "path": str(path),
                "max_input_elements": self.limits.max_input_elements,
            }
            reply = self.worker.measure(request, self.limits.max_seconds)
        finally:
            path.unlink(missing_ok=True)
        if "latency" not in reply:
            # The agent's temporary paths stay private.
            message = str(reply.get("error", "measurement failed")).replace(str(path), "the uploaded model")
            raise HttpError(int(reply.get("status", 500)), message.replace(path.name, "the uploaded model"))
        return {
            "latency": reply["latency"],
            "device": self.runtime_info(settings.runtime).to_dict(),
            "model_sha256": hashlib.sha256(data).hexdigest(),
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled client must not keep the process alive
    # The standard library listens with a backlog of 5: a burst of 50 clients overflowed it and
    # some saw resets. The kernel caps this at net.core.somaxconn.
    request_queue_size = 1024
    agent: AgentServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"slimforge-agent/{__version__}"

    def setup(self) -> None:
        agent = self.server.agent
        self.timeout = agent.limits.read_timeout_s  # socket timeout for every read of this request
        self._slot = agent._connections.acquire(blocking=False)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._slot:
                self.server.agent._connections.release()

    def log_message(self, format: str, *args: Any) -> None:
        log = self.server.agent.log
        if log is not None:
            log.write(f"slimforge agent: {self.client_address[0]} {format % args}\n")
            log.flush()

    def do_GET(self) -> None:
        agent = self.server.agent
        if not self._slot:
            return self._refuse(HttpError(503, _FULL, [("Retry-After", "1")]), 0)
        if urllib.parse.urlsplit(self.path).path != "/v1/info":
            return self._reply(
                404, {"error": f"no such endpoint {self.path}; use GET /v1/info or POST /v1/measure"}
            )
        if not agent.authorised(self.headers.get("Authorization")):
            return self._unauthorised()
        self._reply(200, agent.describe())

    def do_POST(self) -> None:
        agent = self.server.agent
        declared = self._declared_length()
        try:
            if not self._slot:
                raise HttpError(503, _FULL, [("Retry-After", "1")])
            length = self._content_length()
            if urllib.parse.urlsplit(self.path).path != "/v1/measure":
                raise HttpError(404, f"no such endpoint {self.path}; use POST /v1/measure")
            if not agent.authorised(self.headers.get("Authorization")):
                return self._unauthorised(declared)
            if length is None:
                raise HttpError(411, "the upload needs a Content-Length header")
            limit = agent.limits.max_upload_bytes
            if length > limit:
                raise HttpError(
                    413,
                    f"the upload is {length} bytes, above this agent's limit of {limit} bytes; "
                    "restart the agent with a higher --max-upload-mb",
                )
            if length == 0:
                raise HttpError(400, "the upload is empty; send the .onnx file as the request body")
            settings = agent.settings(self.headers.get(SETTINGS_HEADER))
            if agent.busy.locked():  # answered before the body is read: no memory spent on it
                raise HttpError(503, _BUSY, [("Retry-After", "1")])
        except HttpError as exc:
            return self._refuse(exc, declared)
        if not agent._uploads.acquire(blocking=False):
            return self._refuse(HttpError(503, _BUSY, [("Retry-After", "1")]), declared)
        try:
            data = self._read_body(length)
        finally:
            agent._uploads.release()
        if data is None:
            return
        if not agent.busy.acquire(blocking=False):
            return self._refuse(HttpError(503, _BUSY, [("Retry-After", "1")]), 0)
        error: HttpError | None = None
        try:
            reply = agent.measure(data, settings)
        except HttpError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - the agent keeps serving whatever one request does
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            error = HttpError(500, f"measurement failed: {first}")
        finally:
            # Released by the request that measured, even after a 504, and before its answer goes
            # out: a client that sends its next request on the answer must not find the agent busy.
            agent.busy.release()
        if error is not None:
            return self._refuse(error, 0)
        self._reply(200, reply)

    # -- reading -----------------------------------------------------------------------------

    def _read_body(self, length: int) -> bytes | None:
        agent = self.server.agent
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            timeout = agent.limits.read_timeout_s
            self._refuse(HttpError(408, f"the upload did not arrive within {timeout:g} s"), 0)
            return None
        except OSError:
            self.close_connection = True  # the client went away mid-upload
            return None
        if len(data) != length:
            self._refuse(HttpError(400, f"the upload ended after {len(data)} of {length} bytes"), 0)
            return None
        return data

    def _content_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise HttpError(400, f"Content-Length {text!r} is not a byte count")
        return value

    def _declared_length(self) -> int:
        try:
            return max(int(self.headers.get("Content-Length") or 0), 0)
        except ValueError:
            return 0

    # -- replies -----------------------------------------------------------------------------

    def _unauthorised(self, unread: int = 0) -> None:
        self._refuse(
            HttpError(
                401,
                "missing or wrong token; send the agent's token as 'Authorization: Bearer TOKEN'",
                [("WWW-Authenticate", 'Bearer realm="slimforge-agent"')],
            ),
            unread,
        )

    def _refuse(self, error: HttpError, unread: int) -> None:
        self.close_connection = True
        self._reply(error.status, {"error": error.message}, error.headers)
        if unread:
            self._drain(min(unread, _MAX_DRAIN_BYTES))

    def _drain(self, nbytes: int) -> None:
        # Read what the client is still sending, bounded in bytes and time, so that it finishes
        # its upload and reads our reply: closing with unread data makes the kernel send a reset
        # (the client then sees a broken pipe, never the status). Nothing read here is used.
        deadline = time.monotonic() + self.server.agent.limits.read_timeout_s
        try:
            while nbytes > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(min(left, 5.0))
                chunk = self.rfile.read1(min(nbytes, 1 << 16))
                if not chunk:
                    break
                nbytes -= len(chunk)
        except OSError:
            pass

    def _reply(self, status: int, payload: dict[str, Any], headers: Sequence[tuple[str, str]] = ()) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it
