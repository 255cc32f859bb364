"""Devices: the registry and its specs, local ONNX Runtime / PyTorch, tables, the measurement cache."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError, UnknownNameError
from slimforge.hardware import LatencyProtocol, export_onnx
from slimforge.hardware.cache import STORE_FILE, measurement_conditions, open_cache
from slimforge.hardware.devices import (
    DEVICES,
    DeviceError,
    DeviceMeasurement,
    LocalOrtDevice,
    LocalTorchDevice,
    get_device,
)
from slimforge.hardware.tables import DeviceTableError

QUICK = LatencyProtocol(warmup_runs=2, warmup_s=0.05, min_runs=5, min_time_s=0.0, time_cap_s=0.2)

A0 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A1 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A2 = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"
ABSENT = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"


pytestmark = pytest.mark.usefixtures("one_thread")


def small_net(width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_onnx(small_net(), (1, 3, 16, 16), tmp_path_factory.mktemp("onnx") / "net.onnx")


@pytest.fixture(scope="module")
def custom_op_file(tmp_path_factory) -> Path:
    """A valid ONNX graph whose only operator ONNX Runtime does not implement."""
    node = helper.make_node("Frobnicate", ["input"], ["output"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    path = tmp_path_factory.mktemp("custom") / "custom.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def table_csv(tmp_path) -> Path:
    path = tmp_path / "device.csv"
    path.write_text(f"index,arch,latency_ms,energy_mj\n0,{A0},10.5,16.1\n1,{A1},1.8,2.6\n2,{A2},0.5,0.9\n")
    return path


def cached_rows(store_path: Path) -> int:
    with sqlite3.connect(store_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


# ---- registry and specs ----------------------------------------------------------------------


def test_registry_lists_every_kind() -> None:
    assert DEVICES.list() == [
        "local-cpu",
        "local-executorch",
        "local-litert",
        "local-openvino",
        "local-torch",
        "remote",
        "table",
    ]


@pytest.mark.parametrize("name", DEVICES.list())
def test_every_registered_kind_builds_from_its_spec(name, table_csv, monkeypatch) -> None:
    monkeypatch.setenv("SLIMFORGE_AGENT_TOKEN", "a-token")
    argument = {"table": str(table_csv), "remote": "http://127.0.0.1:9"}.get(name)
    spec = name if argument is None else f"{name}:{argument}"
    device = get_device(spec)
    assert device.kind == name and device.spec == spec
    assert isinstance(device, DEVICES.get(name))


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("local-cpuu", UnknownNameError, "did you mean local-cpu"),
        ("gpu", UnknownNameError, "known forms"),
        ("table", InvalidInputError, "needs an argument"),
        ("table:", InvalidInputError, "needs an argument"),
        ("local-cpu:x", InvalidInputError, "takes no argument"),
        ("", InvalidInputError, "non-empty"),
        ("remote:ftp://host:1", InvalidInputError, "http://HOST:PORT"),
        ("remote:http://host", InvalidInputError, "http://HOST:PORT"),
    ],
)
def test_bad_specs_say_what_to_write(spec, error, match, monkeypatch) -> None:
    monkeypatch.setenv("SLIMFORGE_AGENT_TOKEN", "a-token")
    with pytest.raises(error, match=match):
        get_device(spec)


def test_local_devices_describe_this_machine() -> None:
    cpu, eager = get_device("local-cpu").describe(), get_device("local-torch").describe()
    assert (cpu.runtime, eager.runtime) == ("onnxruntime", "torch")
    assert cpu.runtime_version and cpu.cpu_model and cpu.cpu_count >= 1
    assert cpu.identity() != eager.identity()


# ---- local ONNX Runtime and PyTorch ------------------------------------------------------------


def test_local_cpu_measures_an_onnx_file(onnx_file) -> None:
    m = LocalOrtDevice().measure(onnx_file, threads=1, protocol=QUICK)
    assert isinstance(m, DeviceMeasurement)
    assert m.source == "measured" and not m.cached
    assert m.model_sha256 == hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert m.input_shape == (1, 3, 16, 16)  # the file's own shape
    assert m.threads == 1 and m.precision == "fp32"
    assert m.latency is not None and m.latency.runtime == "onnxruntime"
    assert m.latency_ms == m.latency.latency_ms_median > 0
    assert m.latency.num_runs >= QUICK.min_runs
    assert m.stable is m.latency.stable
    assert m.energy_mj is not None and m.energy_mj > 0 and "Horowitz" in m.energy_source
    assert DeviceMeasurement.from_json(m.to_json()) == m


def test_local_cpu_exports_a_module_at_the_given_shape() -> None:
    m = LocalOrtDevice().measure(small_net(), (2, 3, 8, 8), protocol=QUICK, energy=False)
    assert m.input_shape == (2, 3, 8, 8) and m.latency.batch_size == 2
    assert m.energy_mj is None and m.energy_source == "not requested"


@pytest.mark.slow
def test_local_cpu_measures_an_int8_qdq_model(onnx_file, tmp_path) -> None:
    import numpy as np

    from slimforge.compress import quantize_onnx_int8

    calibration = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    int8 = quantize_onnx_int8(onnx_file, tmp_path / "net_int8.onnx", calibration)
    m = LocalOrtDevice().measure(int8, protocol=QUICK)
    assert m.precision == "int8" and m.latency_ms > 0
    assert m.model_sha256 != hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert m.energy_source.startswith("analytic int8")


def test_a_module_without_a_shape_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="input shape"):
        LocalOrtDevice().measure(small_net(), protocol=QUICK)


def test_local_torch_measures_modules_and_refuses_files(onnx_file) -> None:
    device = LocalTorchDevice()
    m = device.measure(small_net(), (1, 3, 8, 8), protocol=QUICK, energy=False)
    assert m.latency.runtime == "torch" and m.latency_ms > 0
    with pytest.raises(InvalidInputError, match="local-cpu"):
        device.measure(onnx_file, protocol=QUICK)


def test_runtime_that_cannot_load_the_model_says_so(custom_op_file) -> None:
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load"):
        LocalOrtDevice().measure(custom_op_file, protocol=QUICK)


def test_a_file_that_is_not_onnx_is_refused(tmp_path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"definitely not protobuf")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        LocalOrtDevice().measure(path, protocol=QUICK)


def test_measure_many_keeps_the_order_across_shapes(onnx_file, tmp_path) -> None:
    small = export_onnx(small_net(), (1, 3, 8, 8), tmp_path / "small.onnx")
    results = LocalOrtDevice().measure_many([onnx_file, small, onnx_file], protocol=QUICK, energy=False)
    assert [r.model for r in results] == [str(onnx_file), str(small), str(onnx_file)]
    assert [r.input_shape for r in results] == [(1, 3, 16, 16), (1, 3, 8, 8), (1, 3, 16, 16)]


# ---- tabular devices --------------------------------------------------------------------------


def test_table_device_answers_for_an_architecture(table_csv) -> None:
    device = get_device(f"table:{table_csv}")
    m = device.measure(A1)
    assert (m.latency_ms, m.energy_mj, m.source) == (1.8, 2.6, "table")
    assert m.latency is None and m.model == A1
    by_genome = device.measure(device.table.genomes[0].tolist())
    assert by_genome.latency_ms == 10.5 and by_genome.energy_mj == 16.1
    assert "3 nb201 architectures" in device.describe().note


@pytest.mark.parametrize("model", ["net.onnx", Path("net.onnx"), small_net(), "not an architecture", (0, 1)])
def test_table_device_refuses_what_is_not_an_nb201_architecture(table_csv, model) -> None:
    with pytest.raises(InvalidInputError, match="answers only for nb201 architectures"):
        get_device(f"table:{table_csv}").measure(model)


def test_table_device_without_the_architecture_says_so(table_csv) -> None:
    with pytest.raises(DeviceError, match="no row"):
        get_device(f"table:{table_csv}").measure(ABSENT)


def test_table_without_energy_says_so(tmp_path) -> None:
    path = tmp_path / "latency_only.csv"
    path.write_text(f"index,arch,latency_ms\n0,{A0},10.5\n")
    m = get_device(f"table:{path}").measure(A0)
    assert m.latency_ms == 10.5 and m.energy_mj is None and m.energy_source == "not in the table"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("index,arch\n0,x\n", "missing column"),
        ("", "empty"),
        (f"index,arch,latency_ms\n0,{A0},fast\n", "not a number"),
    ],
)
def test_bad_table_csv_is_one_line_error(tmp_path, text, match) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DeviceTableError, match=match) as info:
        get_device(f"table:{path}")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_table_file(tmp_path) -> None:
    with pytest.raises(DeviceTableError, match="no such file"):
        get_device(f"table:{tmp_path / 'absent.csv'}")


# ---- the measurement cache --------------------------------------------------------------------


def test_same_conditions_come_from_the_cache(onnx_file, tmp_path) -> None:
    device = LocalOrtDevice()
    with open_cache(tmp_path / "run") as store:
        first = device.measure(onnx_file, protocol=QUICK, store=store)
        again = device.measure(onnx_file, protocol=QUICK, store=store)
        assert not first.cached and again.cached
        assert again.latency == first.latency and again.model_sha256 == first.model_sha256
        forced = device.measure(onnx_file, protocol=QUICK, store=store, force=True)
        assert not forced.cached
        assert device.measure(onnx_file, protocol=QUICK, store=store).latency == forced.latency
        other = device.measure(onnx_file, threads=2, protocol=QUICK, store=store)
        assert not other.cached and other.threads == 2
    assert cached_rows(tmp_path / "run" / STORE_FILE) == 2  # one per condition set; force replaced its row


def test_cached_figure_gets_its_energy_without_a_new_measurement(onnx_file, tmp_path) -> None:
    device = LocalOrtDevice()
    with open_cache(tmp_path / "run") as store:
        bare = device.measure(onnx_file, protocol=QUICK, store=store, energy=False)
        full = device.measure(onnx_file, protocol=QUICK, store=store)
    assert bare.energy_mj is None and full.cached and full.latency == bare.latency
    assert full.energy_mj is not None and full.energy_mj > 0


def test_cache_key_holds_every_condition(onnx_file, tmp_path) -> None:
    device = LocalOrtDevice()
    prepared = device._prepare(onnx_file, None, tmp_path / "x.onnx", need_hash=True)
    key = measurement_conditions(prepared, device.describe().identity(), 1, QUICK)
    assert key["model_sha256"] == hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert key["runtime"] == "onnxruntime" and key["runtime_version"]
    assert (key["threads"], key["batch_size"], key["input_shape"]) == (1, 1, [1, 3, 16, 16])
    assert key["device"]["cpu_model"] and key["protocol"] == QUICK.to_dict()


def test_failed_measurement_writes_no_row(onnx_file, custom_op_file, tmp_path) -> None:
    with open_cache(tmp_path / "store.sqlite") as store, pytest.raises(ModelFileError):
        LocalOrtDevice().measure_many([onnx_file, custom_op_file], protocol=QUICK, store=store)
    assert cached_rows(tmp_path / "store.sqlite") == 0


def test_table_devices_are_not_cached(table_csv, tmp_path) -> None:
    with open_cache(tmp_path / "run") as store:
        get_device(f"table:{table_csv}").measure(A0, store=store)
    assert cached_rows(tmp_path / "run" / STORE_FILE) == 0


def test_open_cache_takes_a_run_directory_or_a_file(tmp_path) -> None:
    (tmp_path / "existing").mkdir()
    with (
        open_cache(tmp_path / "existing") as a,
        open_cache(tmp_path / "new_run") as b,
        open_cache(tmp_path / "db.sqlite") as c,
    ):
        assert a.path == tmp_path / "existing" / STORE_FILE
        assert b.path == tmp_path / "new_run" / STORE_FILE
        assert c.path == tmp_path / "db.sqlite"


def test_a_device_with_the_old_measure_hook_is_refused_where_it_is_defined() -> None:
    from slimforge.hardware.devices import Device

    with pytest.raises(TypeError, match=r"Old\._measure takes .*settings\.threads"):

        class Old(Device):
            def _measure(self, models, threads, protocol, seed, progress):  # the form before MeasureSettings
                return []

    class New(Device):  # the current form defines fine
        def _measure(self, models, settings):
            return []
