"""Every measured device passes the device contract; the deployment runtimes' extras fail helpfully when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.hardware import RUNTIMES, get_device
from slimforge.hardware.devices import DEVICES
from slimforge.hardware.runtimes import OPTIONAL, OptionalPackage, available, installed_runtimes
from slimforge.testing.devices import QUICK_PROTOCOL, DeviceContract, tiny_net

DATA = Path(__file__).parent / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


def needs(distribution: str):
    return pytest.mark.skipif(
        not available(distribution), reason=f"{distribution} is not installed (pip install 'slimforge[...]')"
    )


class TestLocalCpu(DeviceContract):
    @pytest.fixture
    def device(self):
        return get_device("local-cpu")


class TestLocalTorch(DeviceContract):
    @pytest.fixture
    def device(self):
        return get_device("local-torch")


@pytest.mark.slow
@needs("ai-edge-litert")
class TestLocalLiteRt(DeviceContract):
    @pytest.fixture
    def device(self):
        return get_device("local-litert")

    @pytest.fixture
    def models(self):
        if available("litert-torch"):
            return [tiny_net(8, seed=0), tiny_net(16, seed=1)]
        # Without the converter: the same two networks, converted once (tests/hardware/data/make_tflite.py).
        return [str(DATA / "tiny8.tflite"), str(DATA / "tiny16.tflite")]


@pytest.mark.slow
@needs("openvino")
class TestLocalOpenVino(DeviceContract):
    @pytest.fixture
    def device(self):
        return get_device("local-openvino")


@pytest.mark.slow
@needs("executorch")
class TestLocalExecuTorch(DeviceContract):
    @pytest.fixture
    def device(self):
        return get_device("local-executorch")


# ---- registry and conditions -----------------------------------------------------------------


def test_every_runtime_device_is_registered_beside_the_core_ones() -> None:
    assert {"local-cpu", "local-torch", "local-litert", "local-openvino", "local-executorch"} <= set(
        DEVICES.list()
    )
    assert {"onnxruntime", "torch", "litert", "openvino", "executorch", "rknn"} <= set(RUNTIMES.list())
    assert {"onnxruntime", "torch"} <= set(installed_runtimes())


@needs("ai-edge-litert")
def test_litert_records_its_delegate_and_version() -> None:
    info = get_device("local-litert").describe()
    assert (info.runtime, info.delegate) == ("litert", "XNNPACK")
    assert info.runtime_version and info.runtime_version != "unknown"
    assert info.identity()["delegate"] == "XNNPACK"


def test_core_devices_keep_their_cache_identity() -> None:
    # Figures cached before the delegate field existed must still be found.
    assert "delegate" not in get_device("local-cpu").describe().identity()


@needs("ai-edge-litert")
def test_a_file_of_another_format_is_refused_with_the_fix(tmp_path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not used")
    with pytest.raises(InvalidInputError, match="slimforge export MODEL --format tflite"):
        get_device("local-litert").measure(str(onnx), (1, 3, 16, 16), protocol=QUICK_PROTOCOL)


@pytest.mark.parametrize(
    ("spec", "distribution", "extra"),
    [
        ("local-litert", "ai-edge-litert", "litert"),
        ("local-openvino", "openvino", "openvino"),
        ("local-executorch", "executorch", "executorch"),
    ],
)
def test_an_absent_runtime_says_what_to_install(spec, distribution, extra, monkeypatch) -> None:
    # Stand in for a machine without the package: its module cannot be imported.
    monkeypatch.setitem(
        OPTIONAL,
        distribution,
        OptionalPackage("slimforge_no_such_module", distribution, extra, "the runtime"),
    )
    device = get_device(spec)  # naming the device needs nothing installed
    with pytest.raises(MissingDependencyError) as err:
        device.measure(tiny_net(), (1, 3, 16, 16), protocol=QUICK_PROTOCOL)
    message = str(err.value)
    assert f"pip install 'slimforge[{extra}]'" in message and distribution in message and "\n" not in message


def test_torch_runtime_still_refuses_files_in_one_line(tmp_path) -> None:
    runtime = RUNTIMES.get("torch")()
    with (
        pytest.raises(InvalidInputError, match="runs PyTorch models only"),
        runtime.session(str(tmp_path / "m.onnx"), (1, 3, 8, 8)),
    ):
        pass
