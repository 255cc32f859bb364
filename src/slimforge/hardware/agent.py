"""The measurement agent: an HTTP server on the edge device, and the ``remote:`` device that calls it.

``slimforge agent serve --port P --token-file F`` runs :class:`AgentServer` on the device. It
accepts an ONNX model and measurement settings, measures the model with its local ONNX Runtime
(:func:`~slimforge.hardware.measure_latency`) and answers with the figures and the device's
description. The client side is :class:`RemoteDevice` (``--device remote:http://HOST:PORT``).

The protocol (JSON replies; errors are ``{"error": "..."}`` with a 4xx/5xx status):

- ``GET /v1/info`` → ``{"api", "slimforge", "device", "limits"}``.
- ``POST /v1/measure``: the ``.onnx`` bytes as the body, the settings as JSON in the
  ``X-Slimforge-Settings`` header (``input_shape``, ``threads``, ``protocol``, ``seed``) →
  ``{"latency": LatencyResult, "device": DeviceInfo, "model_sha256"}``.

Safety: every request needs ``Authorization: Bearer TOKEN`` (compared with
:func:`hmac.compare_digest`; a wrong token gets 401 before anything is read or run); uploads
above ``max_upload_bytes`` get 413 without being read; an upload that is not a valid ONNX
model gets 400, one ONNX Runtime cannot run gets 422; a request whose protocol could outlast
``max_seconds`` is refused (400) and a measurement that still does gets 504. One measurement
runs at a time: a request that arrives while another measures gets **503 with Retry-After**
at once (it does not queue on the device), and :class:`RemoteDevice` retries it until its
own timeout, so clients wait their turn without tying up server threads. The server listens
on 127.0.0.1 unless told otherwise; the token travels in clear text, so expose it beyond
loopback only on a trusted network.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from slimforge import __version__
from slimforge.errors import InputShapeError, InvalidInputError, ModelFileError, SlimforgeError
from slimforge.hardware.devices import (
    Device,
    DeviceError,
    DeviceInfo,
    DeviceMeasurement,
    PreparedModel,
    local_info,
    prepare_onnx,
)
from slimforge.hardware.latency import LatencyProtocol, LatencyResult, measure_latency
from slimforge.hardware.runtime import check_threads

__all__ = [
    "API_VERSION",
    "TOKEN_ENV",
    "AgentServer",
    "RemoteDevice",
    "read_token",
    "write_token",
]

API_VERSION = 1
#: environment variable a client reads the agent's token from when no token file is given.
TOKEN_ENV = "SLIMFORGE_AGENT_TOKEN"
SETTINGS_HEADER = "X-Slimforge-Settings"
DEFAULT_MAX_UPLOAD_BYTES = 64 * 2**20
DEFAULT_MAX_SECONDS = 120.0
DEFAULT_CLIENT_TIMEOUT_S = 180.0
# Bytes of a refused upload read and dropped after the reply, so the client can finish sending
# and read the reply instead of a connection reset (a "lingering close").
_DISCARD_BYTES = 16 * 2**20
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


# ---- tokens ---------------------------------------------------------------------------------


def read_token(path: str | os.PathLike) -> str:
    """The token in a token file (surrounding whitespace ignored); a missing or empty file raises."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InvalidInputError(
            f"token file {path}: no such file; create one with `slimforge agent token --out {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"token file {path} cannot be read ({exc})") from None
    return _check_token(token, f"token file {path}")


def _check_token(token: str, where: str) -> str:
    if not token:
        raise InvalidInputError(
            f"{where} is empty; put a token in it, e.g. with `slimforge agent token --out FILE`"
        )
    if not _TOKEN_RE.fullmatch(token):
        raise InvalidInputError(f"{where}: the token must be printable ASCII without spaces")
    return token


def write_token(path: str | os.PathLike) -> str:
    """Write a new random token (256 bits, URL-safe) to ``path``, readable by its owner only; returns it."""
    path = Path(path)
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInputError(
            f"token file {path} already exists; remove it first or choose another path"
        ) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write token file {path} ({exc})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


# ---- server ---------------------------------------------------------------------------------


class _HttpError(Exception):
    """A reply with a 4xx/5xx status and a message for the client."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


@dataclass(frozen=True)
class _Settings:
    input_shape: tuple[int, ...] | None
    threads: int
    protocol: LatencyProtocol
    seed: int


class AgentServer:
    """The agent's HTTP server (standard library ``ThreadingHTTPServer``); binds on construction.

    Args:
        token: the shared secret clients must send as ``Authorization: Bearer TOKEN``.
        host: address to listen on; loopback unless the device is to be reached from elsewhere.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        max_upload_bytes: larger uploads are refused with 413 before being read.
        max_seconds: the time limit of one request's measurement (504 past it); a protocol whose
            warm-up plus time cap reaches it is refused with 400.
        read_timeout_s: socket timeout while reading a request (a stalled upload gets 408).
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
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        read_timeout_s: float = 30.0,
        log: TextIO | None = None,
    ) -> None:
        self._token = _check_token(token, "the agent's token").encode("ascii")
        if (
            isinstance(max_upload_bytes, bool)
            or not isinstance(max_upload_bytes, int)
            or max_upload_bytes < 1
        ):
            raise InvalidInputError(
                f"max upload size must be a positive number of bytes, got {max_upload_bytes!r}"
            )
        for name, value in (("max seconds", max_seconds), ("read timeout", read_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidInputError(f"{name} must be a positive number of seconds, got {value!r}")
        self.max_upload_bytes = max_upload_bytes
        self.max_seconds = float(max_seconds)
        self.read_timeout_s = float(read_timeout_s)
        self.log = log
        self.busy = threading.Lock()
        #: uploads this agent has started to measure (a refused request never counts).
        self.measured = 0
        self.info = replace(local_info("agent", "onnxruntime"), name=f"agent@{socket.gethostname()}")
        try:
            self._httpd = _Server((host, port), _Handler)
        except OSError as exc:
            raise DeviceError(
                f"cannot listen on {host}:{port} ({exc}); choose another --port or --host"
            ) from None
        self._httpd.agent = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` the server listens on."""
        host, port = self._httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve requests until :meth:`shutdown` (from another thread) or KeyboardInterrupt."""
        self._httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop serving and close the socket (a measurement under way finishes in its thread)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

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
            "limits": {"max_upload_bytes": self.max_upload_bytes, "max_seconds": self.max_seconds},
        }

    def settings(self, header: str | None) -> _Settings:
        """Parse and check the settings header; a bad one raises a 400."""
        try:
            raw = json.loads(header) if header else {}
        except json.JSONDecodeError as exc:
            raise _HttpError(400, f"the {SETTINGS_HEADER} header is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise _HttpError(400, f"the {SETTINGS_HEADER} header must be a JSON object")
        unknown = sorted(set(raw) - {"input_shape", "threads", "protocol", "seed"})
        if unknown:
            raise _HttpError(
                400, f"unknown setting(s) {', '.join(unknown)}; known: input_shape, threads, protocol, seed"
            )
        try:
            from slimforge.hardware.input_shape import parse_input_shape

            shape = None if raw.get("input_shape") is None else parse_input_shape(raw["input_shape"])
            threads = check_threads(raw.get("threads", 1))
            protocol = (
                LatencyProtocol.from_dict(raw["protocol"]) if raw.get("protocol") else LatencyProtocol()
            )
            seed = raw.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
        except SlimforgeError as exc:
            raise _HttpError(400, str(exc)) from None
        budget = protocol.warmup_s + protocol.time_cap_s
        if budget >= self.max_seconds:
            raise _HttpError(
                400,
                f"the protocol may take up to {budget:g} s (warm-up {protocol.warmup_s:g} s + time cap "
                f"{protocol.time_cap_s:g} s), not under this agent's limit of {self.max_seconds:g} s "
                "per request; "
                "lower the time cap or restart the agent with a higher --max-seconds",
            )
        return _Settings(shape, threads, protocol, seed)

    def measure(self, data: bytes, settings: _Settings) -> dict[str, Any]:
        """Measure an uploaded model (runs in a worker thread holding :attr:`busy`)."""
        from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape

        self.measured += 1  # under the busy lock: one measurement at a time
        with tempfile.TemporaryDirectory(prefix="slimforge-agent-") as tmp:
            path = Path(tmp) / "upload.onnx"
            path.write_bytes(data)

            def clean(exc: BaseException) -> str:
                return (
                    str(exc).replace(str(path), "the uploaded model").replace(path.name, "the uploaded model")
                )

            try:
                proto = load_onnx(path)
                _, declared, _ = onnx_input(proto, path)
            except ModelFileError as exc:
                raise _HttpError(400, f"{clean(exc)}; upload an .onnx file") from None
            del proto
            try:
                shape = resolve_input_shape(declared, settings.input_shape, path)
                result = measure_latency(
                    path,
                    shape,
                    runtime="onnxruntime",
                    threads=settings.threads,
                    protocol=settings.protocol,
                    seed=settings.seed,
                )
            except (ModelFileError, InputShapeError) as exc:
                raise _HttpError(422, clean(exc)) from None
            except SlimforgeError as exc:
                raise _HttpError(400, clean(exc)) from None
        return {
            "latency": result.to_dict(),
            "device": self.info.to_dict(),
            "model_sha256": hashlib.sha256(data).hexdigest(),
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled client must not keep the process alive
    agent: AgentServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"slimforge-agent/{__version__}"

    def setup(self) -> None:
        self.timeout = self.server.agent.read_timeout_s  # socket timeout for every read of this request
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log = self.server.agent.log
        if log is not None:
            log.write(f"slimforge agent: {self.client_address[0]} {format % args}\n")
            log.flush()

    def do_GET(self) -> None:
        agent = self.server.agent
        if urllib.parse.urlsplit(self.path).path != "/v1/info":
            return self._reply(
                404, {"error": f"no such endpoint {self.path}; use GET /v1/info or POST /v1/measure"}
            )
        if not agent.authorised(self.headers.get("Authorization")):
            return self._unauthorised()
        self._reply(200, agent.describe())

    def do_POST(self) -> None:
        agent = self.server.agent
        try:
            length = self._content_length()
            if urllib.parse.urlsplit(self.path).path != "/v1/measure":
                raise _HttpError(404, f"no such endpoint {self.path}; use POST /v1/measure")
            if not agent.authorised(self.headers.get("Authorization")):
                return self._unauthorised(length)
            if length is None:
                raise _HttpError(411, "the upload needs a Content-Length header")
            if length > agent.max_upload_bytes:
                raise _HttpError(
                    413,
                    f"the upload is {length} bytes, above this agent's limit of "
                    f"{agent.max_upload_bytes} bytes; "
                    "restart the agent with a higher --max-upload-mb",
                )
            if length == 0:
                raise _HttpError(400, "the upload is empty; send the .onnx file as the request body")
            settings = agent.settings(self.headers.get(SETTINGS_HEADER))
        except _HttpError as exc:
            return self._refuse(exc, self._declared_length())
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            return self._refuse(
                _HttpError(408, f"the upload did not arrive within {agent.read_timeout_s:g} s"), 0
            )
        if len(data) != length:
            return self._refuse(_HttpError(400, f"the upload ended after {len(data)} of {length} bytes"), 0)
        if not agent.busy.acquire(blocking=False):
            return self._refuse(
                _HttpError(
                    503, "the agent is measuring another model; retry shortly", [("Retry-After", "1")]
                ),
                0,
            )
        self._run(data, settings)

    def _run(self, data: bytes, settings: _Settings) -> None:
        agent = self.server.agent
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["reply"] = agent.measure(data, settings)
            except _HttpError as exc:
                box["error"] = exc
            except Exception as exc:  # noqa: BLE001 - the agent keeps serving whatever one model does
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                box["error"] = _HttpError(500, f"measurement failed: {first}")
            finally:
                agent.busy.release()  # the lock is released by the thread that measured, even after a 504
                done.set()

        threading.Thread(target=work, name="slimforge-agent-measure", daemon=True).start()
        if not done.wait(agent.max_seconds):
            return self._refuse(
                _HttpError(
                    504, f"the measurement took longer than this agent's limit of {agent.max_seconds:g} s"
                ),
                0,
            )
        if "error" in box:
            return self._refuse(box["error"], 0)
        self._reply(200, box["reply"])

    # -- replies -----------------------------------------------------------------------------

    def _content_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise _HttpError(400, f"Content-Length {text!r} is not a byte count")
        return value

    def _declared_length(self) -> int:
        try:
            return max(int(self.headers.get("Content-Length") or 0), 0)
        except ValueError:
            return 0

    def _unauthorised(self, unread: int | None = 0) -> None:
        self._refuse(
            _HttpError(
                401,
                "missing or wrong token; send the agent's token as 'Authorization: Bearer TOKEN'",
                [("WWW-Authenticate", 'Bearer realm="slimforge-agent"')],
            ),
            unread or 0,
        )

    def _refuse(self, error: _HttpError, unread: int) -> None:
        self.close_connection = True
        self._reply(error.status, {"error": error.message}, error.headers)
        if unread:
            self._discard(min(unread, _DISCARD_BYTES))

    def _discard(self, nbytes: int) -> None:
        # Read what the client is still sending (bounded, with a short deadline), so it can read
        # our reply rather than see a reset; nothing read here is used.
        deadline = time.monotonic() + 2.0
        try:
            self.connection.settimeout(0.5)
            while nbytes > 0 and time.monotonic() < deadline:
                chunk = self.connection.recv(min(nbytes, 1 << 16))
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


# ---- client ---------------------------------------------------------------------------------


class RemoteDevice(Device):
    """A device reached through its agent (``remote:http://HOST:PORT``); measures ``.onnx`` files and modules.

    Modules are exported to ONNX here and uploaded; the agent measures with its ONNX Runtime.

    Args:
        url: the agent's ``http://HOST:PORT``.
        token: the agent's token; else read from ``token_file``; else from ``$SLIMFORGE_AGENT_TOKEN``.
        token_file: a file holding the token.
        timeout_s: seconds to wait for each reply (a measurement replies after its protocol ends),
            and in all for a busy agent (503) to become free.
    """

    kind = "remote"
    takes_argument = True
    runtime = "onnxruntime"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        token_file: str | os.PathLike | None = None,
        timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port is None
            or parts.path not in ("", "/")
        ):
            raise InvalidInputError(
                f"remote device URL {url!r} must look like http://HOST:PORT, "
                "e.g. remote:http://127.0.0.1:8765"
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout_s!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._host, self._port, self._https = parts.hostname, port, parts.scheme == "https"
        self.timeout_s = float(timeout_s)
        if token is not None:
            token = _check_token(token.strip(), "the token")
        elif token_file is not None:
            token = read_token(token_file)
        elif os.environ.get(TOKEN_ENV):
            token = _check_token(os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
        else:
            raise InvalidInputError(
                f"device remote:{self.url} needs the agent's token: "
                f"give --token-file FILE or set ${TOKEN_ENV}"
            )
        self._token = token

    @property
    def spec(self) -> str:
        return f"remote:{self.url}"

    def info(self) -> dict[str, Any]:
        """The agent's ``/v1/info`` reply (device, limits, versions)."""
        reply = self._call("GET", "/v1/info")
        if not isinstance(reply.get("device"), dict) or not isinstance(reply.get("limits"), dict):
            raise DeviceError(
                f"{self.url} answered /v1/info without a device description; is it a slimforge agent?"
            )
        return reply

    def describe(self) -> DeviceInfo:
        return replace(self._device_info(self.info()["device"]), name=self.spec)

    def _device_info(self, data: Any) -> DeviceInfo:
        try:
            return DeviceInfo.from_dict(data)
        except (SlimforgeError, TypeError) as exc:
            raise DeviceError(
                f"the agent at {self.url} sent a device description this slimforge cannot read ({exc})"
            ) from None

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        return prepare_onnx(model, shape, onnx_path, self.spec)

    def _measure(
        self,
        models: Sequence[PreparedModel],
        threads: int,
        protocol: LatencyProtocol,
        seed: int,
        progress: bool,
    ) -> list[DeviceMeasurement]:
        limit = int(self.info()["limits"].get("max_upload_bytes", 0))
        out = []
        for m in models:
            assert m.onnx_path is not None and m.input_shape is not None
            data = m.onnx_path.read_bytes()
            if limit and len(data) > limit:
                raise InvalidInputError(
                    f"{m.label} is {len(data)} bytes, above the upload limit of the agent at {self.url} "
                    f"({limit} bytes); restart the agent with a higher --max-upload-mb"
                )
            settings = {
                "input_shape": list(m.input_shape),
                "threads": threads,
                "protocol": protocol.to_dict(),
                "seed": seed,
            }
            reply = self._call(
                "POST",
                "/v1/measure",
                data,
                {"Content-Type": "application/octet-stream", SETTINGS_HEADER: json.dumps(settings)},
            )
            try:
                result = LatencyResult.from_dict(reply["latency"])
            except (KeyError, SlimforgeError, TypeError) as exc:
                raise DeviceError(
                    f"the agent at {self.url} sent a measurement this slimforge cannot read ({exc})"
                ) from None
            if reply.get("model_sha256") != m.sha256:
                raise DeviceError(
                    f"the agent at {self.url} measured other bytes than were sent (hash mismatch); retry"
                )
            info = replace(self._device_info(reply.get("device")), name=self.spec)
            out.append(
                DeviceMeasurement(
                    device=self.spec,
                    device_info=info,
                    model=m.label,
                    model_sha256=m.sha256,
                    input_shape=result.input_shape,
                    threads=threads,
                    precision=m.precision,
                    source="measured",
                    latency_ms=result.latency_ms_median,
                    latency_ms_iqr=result.latency_ms_iqr,
                    stable=result.stable,
                    latency=result,
                    energy_mj=None,
                    energy_source="not requested",
                )
            )
        return out

    # -- HTTP --------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status, reply, retry_after = self._once(method, path, body, headers or {})
            if status == 503 and time.monotonic() + retry_after < deadline:
                time.sleep(retry_after)  # one measurement at a time on the device: wait our turn
                continue
            break
        if status == 200:
            return reply
        message = str(reply.get("error") or f"HTTP {status}")
        where = f"the agent at {self.url}"
        if status == 401:
            raise DeviceError(
                f"{where} refused the token (401); "
                f"give the agent's token with --token-file FILE or ${TOKEN_ENV}"
            )
        if status in (400, 411, 413):
            raise InvalidInputError(f"{where} refused the request ({status}): {message}")
        if status == 422:
            raise ModelFileError(f"{where} cannot run the model: {message}")
        if status == 503:
            raise DeviceError(
                f"{where} stayed busy with other measurements for {self.timeout_s:g} s; retry later"
            )
        raise DeviceError(f"{where} failed ({status}): {message}")

    def _once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict, float]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout_s)
        where = f"the agent at {self.url}"
        try:
            conn.request(
                method, path, body=body, headers={**headers, "Authorization": f"Bearer {self._token}"}
            )
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            raise DeviceError(
                f"cannot reach {where}: connection refused; start `slimforge agent serve` on the device, "
                "or check the host and port"
            ) from None
        except TimeoutError:
            raise DeviceError(
                f"{where} did not answer within {self.timeout_s:g} s; raise --timeout or check the device"
            ) from None
        except socket.gaierror as exc:
            raise DeviceError(f"cannot resolve the host of {where} ({exc.strerror}); check the URL") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeviceError(
                f"lost the connection to {where} ({exc or type(exc).__name__}); check that the agent runs"
            ) from None
        finally:
            conn.close()
        try:
            reply = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply = None
        if not isinstance(reply, dict):
            raise DeviceError(
                f"{self.url} did not answer in JSON (HTTP {response.status}); is it a slimforge agent?"
            )
        try:
            retry_after = max(float(response.getheader("Retry-After") or 1.0), 0.1)
        except ValueError:
            retry_after = 1.0
        return response.status, reply, retry_after
