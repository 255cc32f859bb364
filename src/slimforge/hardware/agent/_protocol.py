"""What the agent and its clients agree on: constants, tokens, the agent's limits, request settings."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware.latency import LatencyProtocol
from slimforge.hardware.runtime import check_threads
from slimforge.io import read_text_file

__all__ = [
    "API_VERSION",
    "DEFAULT_RUNTIME",
    "MIN_TOKEN_CHARS",
    "SETTINGS_HEADER",
    "TOKEN_ENV",
    "AgentLimits",
    "HttpError",
    "Settings",
    "check_token",
    "parse_settings",
    "read_token",
    "served_runtimes",
    "write_token",
]

API_VERSION = 1
#: environment variable a client reads the agent's token from when no token file is given.
TOKEN_ENV = "SLIMFORGE_AGENT_TOKEN"
SETTINGS_HEADER = "X-Slimforge-Settings"
#: the shortest token an agent serves with: 16 printable characters are about 100 bits at the
#: least, out of reach of guessing over HTTP; ``slimforge agent token`` writes 43.
MIN_TOKEN_CHARS = 16
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


# ---- tokens ---------------------------------------------------------------------------------


def read_token(path: str | os.PathLike) -> str:
    """The token in a token file (surrounding whitespace ignored); a missing or empty file raises."""
    path = Path(path)
    hint = f"create one with `slimforge agent token --out {path}`"
    token = read_text_file(path, f"token file {path}", InvalidInputError, hint).strip()
    return check_token(token, f"token file {path}")


def check_token(token: str, where: str, *, serving: bool = False) -> str:
    """``token`` if it is printable ASCII without spaces (and, to serve with, long enough)."""
    if not token:
        raise InvalidInputError(
            f"{where} is empty; put a token in it, e.g. with `slimforge agent token --out FILE`"
        )
    if not _TOKEN_RE.fullmatch(token):
        raise InvalidInputError(f"{where}: the token must be printable ASCII without spaces")
    if serving and len(token) < MIN_TOKEN_CHARS:
        raise InvalidInputError(
            f"{where} is {len(token)} characters; an agent serves only with a token of at least "
            f"{MIN_TOKEN_CHARS} (make one with `slimforge agent token --out FILE`)"
        )
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


# ---- limits ---------------------------------------------------------------------------------


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


@dataclass(frozen=True)
class AgentLimits:
    """Everything an agent bounds, so that no request can wedge it or exhaust the device.

    Args:
        max_upload_bytes: larger uploads get 413 (the body is read and dropped, so the client
            sees the status).
        max_seconds: the wall-clock limit of one measurement; the measuring process is killed
            at it (504) and a fresh one serves the next request.
        max_threads: the most intra-op threads a request may ask for (default: this machine's
            logical cores).
        max_input_elements: the most elements of the input tensor (default 16 Mi: 64 MiB of
            float32, e.g. 64x3x224x224 fits, 1x3x40000x40000 does not).
        max_memory_bytes: address space the measuring process may take beyond what it holds when
            idle (default: half the machine's memory, at most 4 GiB); a model whose outputs or
            intermediates need more fails with 422.
        max_connections: connections served at once; more get 503 with Retry-After.
        read_timeout_s: socket timeout while reading a request (a stalled upload gets 408).
    """

    max_upload_bytes: int = 64 * 2**20
    max_seconds: float = 120.0
    max_threads: int = 0
    max_input_elements: int = 16 * 2**20
    max_memory_bytes: int = 0
    max_connections: int = 64
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        # 0 means "this machine's default", resolved here so that /v1/info reports real numbers.
        if self.max_threads == 0:
            object.__setattr__(self, "max_threads", os.cpu_count() or 1)
        if self.max_memory_bytes == 0:
            object.__setattr__(self, "max_memory_bytes", min(4 * 2**30, _physical_memory() // 2))
        counts = ("max_upload_bytes", "max_threads", "max_input_elements", "max_memory_bytes")
        for name in (*counts, "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"agent limit {name} must be a positive integer, got {value!r}")
        for name in ("max_seconds", "read_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise InvalidInputError(
                    f"agent limit {name} must be a positive number of seconds, got {value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """The limits as ``/v1/info`` reports them."""
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_seconds": float(self.max_seconds),
            "max_threads": self.max_threads,
            "max_input_elements": self.max_input_elements,
            "max_memory_bytes": self.max_memory_bytes,
        }


# ---- requests -------------------------------------------------------------------------------


class HttpError(Exception):
    """A reply with a 4xx/5xx status and a message for the client."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


#: the runtime a request without a ``runtime`` setting is measured with.
DEFAULT_RUNTIME = "onnxruntime"


def served_runtimes() -> list[dict[str, Any]]:
    """The runtimes this machine can serve: every registered runtime that runs uploaded files and
    whose package is installed, with its version, delegate and file suffixes (``/v1/info``).

    PyTorch eager is not among them: its models would have to be unpickled.
    """
    from slimforge.errors import MissingDependencyError
    from slimforge.hardware.runtime import RUNTIMES

    out = []
    for name in RUNTIMES.list():
        try:
            engine = RUNTIMES.get(name)()
            suffixes = engine.file_suffixes or ((".onnx",) if engine.runs_onnx_files else ())
            if not suffixes:
                continue
            version = engine.version()
        except (MissingDependencyError, ImportError):
            continue
        except Exception:  # noqa: BLE001, S112 - a runtime that cannot describe itself is not served
            continue
        out.append(
            {"name": name, "version": version, "delegate": engine.delegate(), "suffixes": list(suffixes)}
        )
    return out


@dataclass(frozen=True)
class Settings:
    """One measurement request's settings, checked against the agent's limits."""

    input_shape: tuple[int, ...] | None
    threads: int
    protocol: LatencyProtocol
    seed: int
    runtime: str = DEFAULT_RUNTIME

    def to_dict(self) -> dict[str, Any]:
        """The settings as the measuring process reads them."""
        return {
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "threads": self.threads,
            "protocol": self.protocol.to_dict(),
            "seed": self.seed,
            "runtime": self.runtime,
        }


def parse_settings(
    header: str | None, limits: AgentLimits, runtimes: Sequence[str] = (DEFAULT_RUNTIME,)
) -> Settings:
    """Parse and check the settings header; a bad one raises a 400 :class:`HttpError`.

    ``runtimes`` are the names this agent serves; a request for another gets a 400 naming them.
    """
    from slimforge.hardware.input_shape import format_shape, parse_input_shape

    try:
        raw = json.loads(header) if header else {}
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"the {SETTINGS_HEADER} header is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise HttpError(400, f"the {SETTINGS_HEADER} header must be a JSON object")
    unknown = sorted(set(raw) - {"input_shape", "threads", "protocol", "seed", "runtime"})
    if unknown:
        raise HttpError(
            400,
            f"unknown setting(s) {', '.join(unknown)}; known: input_shape, threads, protocol, seed, runtime",
        )
    runtime = raw.get("runtime", DEFAULT_RUNTIME)
    if runtime not in runtimes:
        raise HttpError(
            400,
            f"this agent does not serve the runtime {runtime!r}; it serves {', '.join(runtimes)} "
            "(install the runtime's package on the device and restart the agent)",
        )
    try:
        shape = None if raw.get("input_shape") is None else parse_input_shape(raw["input_shape"])
        threads = check_threads(raw.get("threads", 1))
        protocol = LatencyProtocol.from_dict(raw["protocol"]) if raw.get("protocol") else LatencyProtocol()
        seed = raw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    except SlimforgeError as exc:
        raise HttpError(400, str(exc)) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a protocol that is not an object, ...
        raise HttpError(400, f"the {SETTINGS_HEADER} header is malformed ({exc})") from None
    if threads > limits.max_threads:
        raise HttpError(
            400,
            f"threads {threads} is above this agent's limit of {limits.max_threads}; ask for at most "
            f"{limits.max_threads} (or restart the agent with a higher --max-threads)",
        )
    if shape is not None:
        check_input_elements(shape, limits, format_shape(shape))
    budget = protocol.warmup_s + protocol.time_cap_s
    if budget >= limits.max_seconds:
        raise HttpError(
            400,
            f"the protocol may take up to {budget:g} s (warm-up {protocol.warmup_s:g} s + time cap "
            f"{protocol.time_cap_s:g} s), not under this agent's limit of {limits.max_seconds:g} s "
            "per request; lower the time cap or restart the agent with a higher --max-seconds",
        )
    return Settings(shape, threads, protocol, seed, runtime)


def check_input_elements(shape: Sequence[int], limits: AgentLimits, shown: str) -> None:
    """Raise a 400 when an input of ``shape`` holds more elements than the agent allows."""
    elements = math.prod(shape)
    if elements > limits.max_input_elements:
        raise HttpError(
            400,
            f"the input {shown} has {elements:,} elements, above this agent's limit of "
            f"{limits.max_input_elements:,}; measure a smaller input (or restart the agent with a "
            "higher --max-input-elements)",
        )
