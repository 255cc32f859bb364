"""The measurement agent on 127.0.0.1: round trip, tokens, bad uploads, limits, busy, and it keeps serving."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import stat
import threading
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.hardware import LatencyProtocol, export_onnx
from slimforge.hardware.agent import (
    SETTINGS_HEADER,
    TOKEN_ENV,
    AgentLimits,
    AgentServer,
    RemoteDevice,
    read_token,
    runaway_model,
    write_token,
)
from slimforge.hardware.devices import DeviceError, get_device

TOKEN = "test-token-0123456789"
QUICK = LatencyProtocol(warmup_runs=2, warmup_s=0.05, min_runs=5, min_time_s=0.0, time_cap_s=0.2)
MAX_UPLOAD = 64 * 1024


def small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_onnx(small_net(), (1, 3, 16, 16), tmp_path_factory.mktemp("agent") / "net.onnx")


@pytest.fixture(scope="module")
def agent():
    with AgentServer(TOKEN, "127.0.0.1", 0, max_upload_bytes=MAX_UPLOAD, max_seconds=10.0) as server:
        yield server


@pytest.fixture(autouse=True)
def _agent_still_serves(request):
    """After every test that used the agent, it still answers (bad requests never stop it)."""
    yield
    if "agent" in request.fixturenames:
        server = request.getfixturevalue("agent")
        status, _, _ = post(server, "/v1/info", method="GET")
        assert status == 200


def post(
    server: AgentServer,
    path: str = "/v1/measure",
    body: bytes = b"",
    token: str | None = TOKEN,
    headers: dict | None = None,
    method: str = "POST",
) -> tuple[int, dict, dict]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body if method == "POST" else None, headers=all_headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        conn.close()


def settings(**kw) -> dict:
    return {SETTINGS_HEADER: json.dumps({"threads": 1, "protocol": QUICK.to_dict(), **kw})}


# ---- round trip -------------------------------------------------------------------------------


def test_measurement_round_trip(agent, model_file) -> None:
    device = RemoteDevice(agent.url, token=TOKEN)
    before = agent.measured
    m = device.measure(model_file, protocol=QUICK)
    assert agent.measured == before + 1
    assert m.source == "measured" and m.device == f"remote:{agent.url}"
    assert m.device_info.kind == "agent" and m.device_info.runtime == "onnxruntime"
    assert m.device_info.cpu_model and m.device_info.hostname == socket.gethostname()
    assert m.model_sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert m.input_shape == (1, 3, 16, 16) and m.threads == 1
    assert m.latency is not None and m.latency_ms == m.latency.latency_ms_median > 0
    assert m.latency.protocol == QUICK
    assert m.energy_mj is not None  # estimated on the client from the same ONNX file


def test_a_module_is_exported_and_uploaded(agent) -> None:
    m = get_device(f"remote:{agent.url}", token=TOKEN).measure(
        small_net(), (1, 3, 8, 8), protocol=QUICK, energy=False
    )
    assert m.input_shape == (1, 3, 8, 8) and m.latency_ms > 0


def test_info_describes_the_device_and_limits(agent) -> None:
    reply = RemoteDevice(agent.url, token=TOKEN).info()
    assert reply["limits"] == {
        "max_upload_bytes": MAX_UPLOAD,
        "max_seconds": 10.0,
        "max_threads": os.cpu_count(),
        "max_input_elements": AgentLimits.max_input_elements,
        "max_memory_bytes": agent.limits.max_memory_bytes,
    }
    assert reply["device"]["runtime"] == "onnxruntime"


def test_remote_measurements_are_cached(agent, model_file, tmp_path) -> None:
    from slimforge.hardware.cache import open_cache

    device = RemoteDevice(agent.url, token=TOKEN)
    with open_cache(tmp_path / "run") as store:
        first = device.measure(model_file, protocol=QUICK, store=store)
        before = agent.measured
        again = device.measure(model_file, protocol=QUICK, store=store)
    assert again.cached and again.latency == first.latency and agent.measured == before


# ---- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", None, TOKEN + "x", ""])
def test_wrong_token_gets_401_and_nothing_runs(agent, model_file, token) -> None:
    before = agent.measured
    status, reply, headers = post(agent, body=model_file.read_bytes(), token=token, headers=settings())
    assert status == 401 and "token" in reply["error"]
    assert "Bearer" in headers.get("WWW-Authenticate", "")
    assert agent.measured == before


def test_wrong_scheme_is_refused(agent) -> None:
    status, _, _ = post(
        agent, "/v1/info", method="GET", token=None, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert status == 401


def test_client_with_wrong_token_gets_a_clear_error(agent, model_file) -> None:
    with pytest.raises(DeviceError, match="refused the token.*--token-file"):
        RemoteDevice(agent.url, token="nope").measure(model_file, protocol=QUICK)


def test_token_files(tmp_path, monkeypatch) -> None:
    path = tmp_path / "agent.token"
    token = write_token(path)
    assert len(token) >= 32 and read_token(path) == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(InvalidInputError, match="already exists"):
        write_token(path)
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(InvalidInputError, match="is empty"):
        read_token(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="agent token --out"):
        read_token(tmp_path / "absent")
    assert RemoteDevice("http://127.0.0.1:9", token_file=path)._token == token
    monkeypatch.setenv(TOKEN_ENV, token)
    assert RemoteDevice("http://127.0.0.1:9")._token == token
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(InvalidInputError, match="--token-file"):
        RemoteDevice("http://127.0.0.1:9")


def test_agent_refuses_an_empty_token() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        AgentServer("")


# ---- bad uploads ------------------------------------------------------------------------------


def test_oversize_upload_gets_413(agent) -> None:
    before = agent.measured
    status, reply, _ = post(agent, body=b"\0" * (MAX_UPLOAD + 1), headers=settings())
    assert status == 413 and "limit" in reply["error"] and str(MAX_UPLOAD) in reply["error"]
    assert agent.measured == before


def test_client_checks_the_upload_limit_first(agent, tmp_path) -> None:
    big = export_onnx(nn.Conv2d(3, 256, 7), (1, 3, 16, 16), tmp_path / "big.onnx")  # ~150 KB of weights
    assert big.stat().st_size > MAX_UPLOAD
    with pytest.raises(InvalidInputError, match="upload limit"):
        RemoteDevice(agent.url, token=TOKEN).measure(big, protocol=QUICK, energy=False)


@pytest.mark.parametrize("body", [b"this is not an onnx model", b"\x08\x07" * 100])
def test_non_onnx_upload_gets_400(agent, body) -> None:
    status, reply, _ = post(agent, body=body, headers=settings(input_shape=[1, 3, 16, 16]))
    assert (
        status == 400 and "not an ONNX model" in reply["error"] and "upload an .onnx file" in reply["error"]
    )
    assert "/tmp" not in reply["error"]  # the agent's temporary paths stay private


def test_model_the_runtime_cannot_load_gets_422(agent, tmp_path) -> None:
    node = helper.make_node("Frobnicate", ["input"], ["output"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    path = tmp_path / "custom.onnx"
    onnx.save(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
        ),
        str(path),
    )
    status, reply, _ = post(agent, body=path.read_bytes(), headers=settings())
    assert status == 422 and "cannot load" in reply["error"]
    with pytest.raises(ModelFileError, match="cannot run the model"):
        RemoteDevice(agent.url, token=TOKEN).measure(path, protocol=QUICK, energy=False)


def quick(**kw) -> str:
    return json.dumps({"protocol": QUICK.to_dict(), **kw})


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (quick(threads=0), "threads"),
        (quick(colour="blue"), "unknown setting"),
        (quick(input_shape=[1, 3, 9, 9]), "does not match"),
        (quick(seed=-1), "seed"),
        (json.dumps({"protocol": {**QUICK.to_dict(), "time_cap_s": 60}}), "limit of 10 s"),
        (json.dumps({}), "limit of 10 s"),  # the default protocol (10 s cap + warm-up) does not fit
    ],
)
def test_bad_settings_get_4xx_with_the_reason(agent, model_file, header, match) -> None:
    before = agent.measured
    status, reply, _ = post(agent, body=model_file.read_bytes(), headers={SETTINGS_HEADER: header})
    assert 400 <= status < 500 and match in reply["error"]
    assert agent.measured == before or match == "does not match"


def test_unknown_endpoint_and_empty_upload(agent) -> None:
    assert post(agent, "/v1/nothing", body=b"x")[0] == 404
    assert post(agent, "/", method="GET")[0] == 404
    status, reply, _ = post(agent, body=b"")
    assert status == 400 and "empty" in reply["error"]


# ---- one at a time, time limit, unreachable -----------------------------------------------------


@pytest.mark.slow
def test_busy_agent_answers_503_and_the_client_waits(agent, model_file) -> None:
    agent.busy.acquire()
    try:
        status, reply, headers = post(agent, body=model_file.read_bytes(), headers=settings())
        assert status == 503 and "another model" in reply["error"] and headers["Retry-After"] == "1"
    finally:
        threading.Timer(0.5, agent.busy.release).start()
    m = RemoteDevice(agent.url, token=TOKEN, timeout_s=20).measure(model_file, protocol=QUICK, energy=False)
    assert m.latency_ms > 0


@pytest.mark.slow
def test_a_runaway_model_gets_504_and_the_agent_recovers(model_file, tmp_path) -> None:
    # The wedging model of issue 17: a 330-byte Loop of 10**15 iterations. Its measuring process
    # is killed at the limit, so the busy lock is free and the next request is measured.
    runaway = tmp_path / "runaway.onnx"
    runaway.write_bytes(runaway_model())
    protocol = LatencyProtocol(warmup_runs=1, warmup_s=0.0, min_runs=1, min_time_s=0.0, time_cap_s=0.1)
    with AgentServer(TOKEN, max_seconds=1.0) as server:
        first = server.worker.pid
        status, reply, _ = post(server, body=runaway.read_bytes(), headers=settings(input_shape=[1, 4]))
        assert status == 504 and "longer than this agent's limit of 1 s" in reply["error"]
        assert not server.busy.locked() and server.worker.pid != first
        with pytest.raises(DeviceError, match="longer than this agent's limit"):
            RemoteDevice(server.url, token=TOKEN).measure(runaway, protocol=protocol, energy=False)
        m = RemoteDevice(server.url, token=TOKEN).measure(model_file, protocol=protocol, energy=False)
        assert m.latency_ms > 0


def test_unreachable_agent_is_a_one_line_error(model_file) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: nothing answers there
        with pytest.raises(DeviceError, match="connection refused") as info:
            RemoteDevice(f"http://127.0.0.1:{port}", token=TOKEN).measure(model_file, protocol=QUICK)
    assert "\n" not in str(info.value)


def test_silent_server_times_out(model_file) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts the connection, never answers
        port = s.getsockname()[1]
        with pytest.raises(DeviceError, match="did not answer within 0.3 s"):
            RemoteDevice(f"http://127.0.0.1:{port}", token=TOKEN, timeout_s=0.3).measure(
                model_file, protocol=QUICK
            )


def test_busy_port_is_reported() -> None:
    with AgentServer(TOKEN) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(DeviceError, match="cannot listen"):
            AgentServer(TOKEN, port=port)
