"""``slimforge agent bench``: an agent under load right after a runaway model, every answer a status.

The bench starts ``slimforge agent serve`` on 127.0.0.1 in a process of its own (as a device
would run it), uploads a model that never ends (a ``Loop`` of 10**15 iterations), then sends
sequential and concurrent measurement requests and an oversized upload, and counts what comes
back: HTTP statuses, and connections reset or dropped without one.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.hardware.agent._protocol import SETTINGS_HEADER, write_token

__all__ = ["AgentBenchResult", "bench_agent", "runaway_model", "small_model"]

# A short protocol: the bench is about the agent answering, not about stable figures.
_QUICK = {
    "warmup_runs": 1,
    "warmup_s": 0.0,
    "min_runs": 3,
    "min_time_s": 0.0,
    "max_runs": 20,
    "time_cap_s": 0.02,
    "rel_iqr_threshold": 1.0,
}


def runaway_model(iterations: int = 10**15) -> bytes:
    """A ~330-byte ONNX model whose ``Loop`` adds 1 to a 1x4 input ``iterations`` times (never ends)."""
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["x_in", "one"], ["x_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip", "cond", "input"], ["output"], body=body)],
        "runaway",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        [
            helper.make_tensor("trip", TensorProto.INT64, [], [iterations]),
            helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def small_model() -> bytes:
    """A small valid ONNX model (3x3 convolution, ReLU, global pooling) taking a 1x3x16x16 input."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["output"]),
        ],
        "small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8, 1, 1])],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@dataclass(frozen=True)
class AgentBenchResult:
    """What the agent answered in each phase: ``{status or failure: count}`` and the wall time."""

    runaway: dict[str, int]
    runaway_s: float
    sequential: dict[str, int]
    sequential_s: float
    concurrent: dict[str, int]
    concurrent_s: float
    oversized: dict[str, int]
    after: dict[str, int]
    max_seconds: float
    machine: str
    date: str

    @property
    def failures(self) -> int:
        """Requests that got no HTTP status (reset, broken pipe, timeout, dropped)."""
        phases = (self.runaway, self.sequential, self.concurrent, self.oversized, self.after)
        return sum(n for phase in phases for k, n in phase.items() if not k.isdigit())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the failure count."""
        return {**asdict(self), "failures": self.failures}


class _Client:
    def __init__(self, host: str, port: int, token: str, timeout_s: float) -> None:
        self.host, self.port, self.token, self.timeout_s = host, port, token, timeout_s

    def post(self, body: bytes, settings: dict[str, Any] | None = None) -> str:
        """The reply's status as text, or what went wrong instead ("reset", "timeout", ...)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/octet-stream"}
        headers[SETTINGS_HEADER] = json.dumps({"threads": 1, "protocol": _QUICK, **(settings or {})})
        try:
            conn.request("POST", "/v1/measure", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return str(response.status)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except TimeoutError:
            return "timeout"
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            conn.close()

    def info(self) -> str:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request("GET", "/v1/info", headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            response.read()
            return str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            conn.close()


def _start_agent(token_file: Path, max_seconds: float) -> tuple[subprocess.Popen[str], str, int]:
    command = [
        sys.executable, "-m", "slimforge", "agent", "serve", "--port", "0", "--quiet",
        "--token-file", str(token_file), "--max-seconds", f"{max_seconds:g}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    marker = "listening on http://"
    if marker not in line:
        proc.kill()
        raise InvalidInputError(f"the agent did not start (it printed {line.strip()!r})")
    address = line.split(marker, 1)[1].split()[0]
    host, port = address.rsplit(":", 1)
    return proc, host, int(port)


def _machine() -> str:
    from slimforge.hardware.latency import cpu_model

    return f"{cpu_model()} ({os.cpu_count()} logical cores), {platform.system()} {platform.release()}, " + (
        f"Python {platform.python_version()}, host {socket.gethostname()}"
    )


def bench_agent(
    *, sequential: int = 200, concurrent: int = 50, max_seconds: float = 3.0, oversize_mb: int = 70
) -> AgentBenchResult:
    """Start an agent on 127.0.0.1, wedge it with a runaway model, then load it and count the answers.

    Args:
        sequential: measurement requests sent one after another after the runaway model.
        concurrent: requests sent at once (one thread and one connection each, no retries).
        max_seconds: the agent's ``--max-seconds`` (the runaway model gets 504 after it).
        oversize_mb: size of the upload above the 64 MiB limit (0 skips that phase).
    """
    for name, value in (("sequential", sequential), ("concurrent", concurrent)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive number of requests, got {value!r}")
    small, runaway = small_model(), runaway_model()
    with tempfile.TemporaryDirectory(prefix="slimforge-agent-bench-") as tmp:
        token_file = Path(tmp) / "token"
        token = write_token(token_file)
        proc, host, port = _start_agent(token_file, max_seconds)
        try:
            client = _Client(host, port, token, timeout_s=max_seconds + 150)
            deadline = time.monotonic() + 60
            while client.info() != "200" and time.monotonic() < deadline:
                time.sleep(0.2)
            client.post(small)  # the first measurement waits for the measuring process to start

            start = time.perf_counter()
            runaway_status = Counter([client.post(runaway, {"input_shape": [1, 4]})])
            runaway_s = time.perf_counter() - start

            start = time.perf_counter()
            seq = Counter(client.post(small) for _ in range(sequential))
            seq_s = time.perf_counter() - start

            answers: list[str] = []
            barrier = threading.Barrier(concurrent)

            def one() -> None:
                barrier.wait()
                answers.append(client.post(small))

            threads = [threading.Thread(target=one) for _ in range(concurrent)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            conc_s = time.perf_counter() - start

            oversized = Counter([client.post(b"\0" * (oversize_mb * 2**20))] if oversize_mb else [])
            after = Counter([client.post(small)])
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return AgentBenchResult(
        runaway=dict(runaway_status),
        runaway_s=round(runaway_s, 2),
        sequential=dict(seq),
        sequential_s=round(seq_s, 2),
        concurrent=dict(Counter(answers)),
        concurrent_s=round(conc_s, 2),
        oversized=dict(oversized),
        after=dict(after),
        max_seconds=float(max_seconds),
        machine=_machine(),
        date=datetime.date.today().isoformat(),
    )
