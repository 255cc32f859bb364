"""The agent serves every installed runtime and lists them in /v1/info; RKNN through a stubbed toolkit.

``rknn-toolkit-lite2`` ships only aarch64 wheels (it runs on the Rockchip board), so the RKNN
request/response path is tested with a stand-in ``rknnlite`` package behind the real ``rknn``
registry entry: the agent, its measuring process, the runtime class and the client are the real
ones; only the NPU is not. The measuring process finds the stand-in through PYTHONPATH.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest

from slimforge.errors import InvalidInputError, ModelFileError, UnknownNameError
from slimforge.hardware.agent import SETTINGS_HEADER, AgentServer, RemoteDevice
from slimforge.hardware.devices import DeviceError, get_device
from slimforge.hardware.runtimes import available
from slimforge.testing.devices import QUICK_PROTOCOL, DeviceContract

# Starting an agent and its measuring process takes seconds.
pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789"
DATA = Path(__file__).parent / "data"
SHAPE = (1, 3, 16, 16)

_STUB_API = '''
"""A stand-in for rknn-toolkit-lite2's RKNNLite (tests only): 'runs' files that start with STUBRKNN."""
import numpy as np


class RKNNLite:
    NPU_CORE_AUTO = 0

    def __init__(self, verbose=False):
        self._weights = None

    def load_rknn(self, path):
        data = open(path, "rb").read()
        if not data.startswith(b"STUBRKNN"):
            return -1
        self._weights = np.frombuffer(data[8:] or b"\\x01", dtype=np.uint8).astype(np.float32)
        return 0

    def init_runtime(self, core_mask=0):
        return 0 if self._weights is not None else -1

    def inference(self, inputs, data_format="nchw"):
        x = np.asarray(inputs[0], dtype=np.float32).reshape(inputs[0].shape[0], -1)
        return [np.tanh(x[:, :10] * self._weights[0])]

    def release(self):
        self._weights = None
'''


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rknn-stub")
    (root / "rknnlite").mkdir()
    (root / "rknnlite" / "__init__.py").write_text("")
    (root / "rknnlite" / "api.py").write_text(_STUB_API)
    info = root / "rknn_toolkit_lite2-0.0.0+stub.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rknn-toolkit-lite2\nVersion: 0.0.0+stub\n")
    return root


@pytest.fixture(scope="module")
def agent(stub_dir):
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(stub_dir))
    mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(stub_dir), os.environ.get("PYTHONPATH")) if p))
    try:
        with AgentServer(TOKEN, "127.0.0.1", 0, max_seconds=30.0) as server:
            yield server
    finally:
        mp.undo()


@pytest.fixture
def rknn_file(tmp_path) -> Path:
    path = tmp_path / "model.rknn"
    path.write_bytes(b"STUBRKNN\x02\x03")
    return path


def call(
    server: AgentServer, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, dict]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(
            method, path, body=body or None, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_info_lists_the_runtimes_it_serves(agent) -> None:
    status, info = call(agent, "GET", "/v1/info")
    assert status == 200
    names = {r["name"] for r in info["runtimes"]}
    assert {"onnxruntime", "rknn"} <= names and "torch" not in names  # torch would need unpickling
    for name in ("litert", "openvino", "executorch"):
        assert (name in names) == available({"litert": "ai-edge-litert"}.get(name, name))
    rknn = next(r for r in info["runtimes"] if r["name"] == "rknn")
    assert rknn == {
        "name": "rknn",
        "version": "0.0.0+stub",
        "delegate": "NPU (core mask auto)",
        "suffixes": [".rknn"],
    }


def test_rknn_round_trip_through_the_stubbed_toolkit(agent, rknn_file) -> None:
    device = get_device(f"remote:{agent.url}#rknn", token=TOKEN)
    assert device.runtime == "rknn" and device.spec.endswith("#rknn")
    result = device.measure(str(rknn_file), SHAPE, protocol=QUICK_PROTOCOL, energy=False)
    assert result.latency_ms > 0 and result.latency is not None
    assert result.latency.runtime == "rknn" and result.latency.runtime_version == "0.0.0+stub"
    assert (result.device_info.runtime, result.device_info.delegate) == ("rknn", "NPU (core mask auto)")
    info = device.describe()
    assert (info.runtime, info.runtime_version) == ("rknn", "0.0.0+stub")


def test_a_file_the_board_cannot_load_is_a_422_and_the_agent_serves_on(agent, tmp_path) -> None:
    bad = tmp_path / "bad.rknn"
    bad.write_bytes(b"not an rknn model")
    device = RemoteDevice(agent.url, token=TOKEN, runtime="rknn")
    with pytest.raises(ModelFileError, match="cannot run the model"):
        device.measure(str(bad), SHAPE, protocol=QUICK_PROTOCOL, energy=False)
    assert call(agent, "GET", "/v1/info")[0] == 200


def test_a_runtime_the_agent_does_not_serve_is_a_400_naming_those_it_does(agent, rknn_file) -> None:
    settings = {"input_shape": list(SHAPE), "runtime": "torch"}
    status, reply = call(
        agent, "POST", "/v1/measure", rknn_file.read_bytes(),
        {SETTINGS_HEADER: json.dumps(settings), "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert (
        status == 400 and "does not serve the runtime 'torch'" in reply["error"] and "rknn" in reply["error"]
    )


def test_the_client_refuses_runtimes_it_cannot_ask_for() -> None:
    with pytest.raises(UnknownNameError, match="did you mean rknn"):
        RemoteDevice("http://127.0.0.1:9", token=TOKEN, runtime="rknnn")
    with pytest.raises(InvalidInputError, match="unpickled"):
        RemoteDevice("http://127.0.0.1:9#torch", token=TOKEN)


def test_the_client_says_when_the_agent_lacks_a_runtime(agent, monkeypatch) -> None:
    monkeypatch.setattr(agent, "runtimes", {k: v for k, v in agent.runtimes.items() if k != "rknn"})
    with pytest.raises(DeviceError, match="does not serve the runtime 'rknn'; it serves .*onnxruntime"):
        RemoteDevice(agent.url, token=TOKEN, runtime="rknn").describe()


@pytest.mark.skipif(not available("ai-edge-litert"), reason="ai-edge-litert is not installed")
class TestRemoteLiteRt(DeviceContract):
    """A remote agent's LiteRT passes the same contract as the local one."""

    @pytest.fixture
    def device(self, agent):
        return RemoteDevice(agent.url, token=TOKEN, runtime="litert")

    @pytest.fixture
    def models(self):
        return [str(DATA / "tiny8.tflite"), str(DATA / "tiny16.tflite")]
