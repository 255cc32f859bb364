"""The measuring process: ``python -m slimforge.hardware.agent._child MAX_MEMORY_BYTES``.

The agent measures every upload here, never in its own process, so that it can kill a runaway
model (a ``Loop`` of 10**15 iterations, a graph that allocates without end) at its time limit
and go on serving. One JSON request per line on stdin, one JSON reply per line on the
descriptor that was stdout; everything the libraries print goes to stderr.

Request: ``{"path", "input_shape", "threads", "protocol", "seed", "max_input_elements"[, "runtime"]}``
(``runtime`` defaults to ``onnxruntime``; the others are :mod:`slimforge.hardware.runtimes`).
Replies: ``{"accepted": true}`` at once, then ``{"latency": LatencyResult}`` or
``{"status": 4xx/5xx, "error": "one line"}``.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from slimforge.io import exit_with_parent

__all__ = ["main"]


def _limit_memory(extra_bytes: int) -> None:
    # Address space beyond what the process holds now (interpreter, torch, ONNX Runtime loaded):
    # an allocation past it fails inside this process, which then answers 422 and lives on.
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return  # no /proc: the agent's time limit still ends a runaway allocation
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    except (ValueError, OSError):
        pass


def _warm_up() -> None:
    # One tiny measurement before saying "ready": what measuring imports or initialises on first
    # use (about a second) must not count against the first request's time limit.
    import tempfile

    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])],
        "warm_up",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory(prefix="slimforge-agent-warm-") as tmp:
        path = Path(tmp) / "warm_up.onnx"
        path.write_bytes(model.SerializeToString())
        protocol = {"warmup_runs": 1, "warmup_s": 0.0, "min_runs": 1, "min_time_s": 0.0, "time_cap_s": 0.01}
        measure_request(
            {"path": str(path), "input_shape": None, "threads": 1, "protocol": protocol, "seed": 0,
             "max_input_elements": 4}
        )  # fmt: skip


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def measure_request(request: dict[str, Any]) -> dict[str, Any]:
    """Measure one request's model; every failure becomes a reply with a status (never raises)."""
    from slimforge.errors import InvalidInputError, ModelFileError
    from slimforge.hardware.input_shape import parse_input_shape
    from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape
    from slimforge.hardware.runtime import RUNTIMES

    path = Path(request["path"])
    runtime = request.get("runtime", "onnxruntime")
    if runtime != "onnxruntime":  # a deployment runtime (LiteRT, OpenVINO, ExecuTorch, RKNN)

        def shape_of() -> tuple[int, ...]:
            engine = RUNTIMES.get(runtime)()
            declared = (
                request["input_shape"] if request["input_shape"] is not None else engine.input_shape(path)
            )
            if declared is None:
                raise InvalidInputError(f"give the input shape of the uploaded {runtime} model")
            return parse_input_shape(declared)

        return _measure(request, runtime, shape_of, "", "")
    try:
        proto = load_onnx(path)
        _, declared, _ = onnx_input(proto, path)
    except ModelFileError as exc:
        return {"status": 400, "error": f"{exc}; upload an .onnx file"}
    except MemoryError:
        return {"status": 422, "error": "the uploaded model does not fit in this agent's memory limit"}
    del proto
    return _measure(
        request,
        runtime,
        lambda: resolve_input_shape(declared, request["input_shape"], path),
        "; measure a smaller input (or restart the agent with a higher --max-input-elements)",
        "; measure a smaller one",
    )


def _measure(
    request: dict[str, Any],
    runtime: str,
    shape_of: Callable[[], tuple[int, ...]],
    big_input: str,
    big_model: str,
) -> dict[str, Any]:
    """The reply to ``request`` once its model has been read: its input checked, then its latency.

    ``big_input`` and ``big_model`` end the messages of an input over the limit and of a model out
    of memory.
    """
    from slimforge.errors import InputShapeError, ModelFileError, SlimforgeError
    from slimforge.hardware.input_shape import format_shape
    from slimforge.hardware.latency import LatencyProtocol, measure_latency

    try:
        shape = shape_of()
        elements = math.prod(shape)
        if elements > request["max_input_elements"]:
            return {
                "status": 400,
                "error": (
                    f"the input {format_shape(shape)} has {elements:,} elements, above this agent's limit "
                    f"of {request['max_input_elements']:,}{big_input}"
                ),
            }
        result = measure_latency(
            Path(request["path"]),
            shape,
            runtime=runtime,
            threads=request["threads"],
            protocol=LatencyProtocol.from_dict(request["protocol"]),
            seed=request["seed"],
        )
    except (ModelFileError, InputShapeError) as exc:
        return {"status": 422, "error": str(exc)}
    except MemoryError:
        return {
            "status": 422,
            "error": f"the model needs more memory than this agent allows (--max-memory-mb){big_model}",
        }
    except SlimforgeError as exc:
        return {"status": 400, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - whatever one model does, the process answers
        return {"status": 500, "error": f"measurement failed: {_first_line(exc)}"}
    return {"latency": result.to_dict()}


def _serve(replies: TextIO) -> None:
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # the agent closed the pipe: it is gone or done with this process
        # Acknowledge first: the agent then knows that a death from here on is this model's doing
        # (before it, the process was gone already and the request is sent again to a new one).
        replies.write('{"accepted": true}\n')
        replies.flush()
        try:
            request = json.loads(line)
            reply = measure_request(request)
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"status": 500, "error": f"the agent sent a request this process cannot read ({exc})"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> None:
    """Serve measurement requests until stdin closes (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    exit_with_parent(int(argv[1]) if len(argv) > 1 else os.getppid())
    # Replies get their own descriptor; fd 1 then points at stderr, so that a library printing
    # from C cannot corrupt them.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Load and initialise what measuring needs before the memory limit, which then bounds the
    # models alone.
    _warm_up()
    _limit_memory(int(argv[0]))
    replies.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    replies.flush()
    _serve(replies)


if __name__ == "__main__":
    main()
