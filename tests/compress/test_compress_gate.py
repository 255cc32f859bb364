"""The measured gate of ``compress``: a stage that slows the model is repaired or dropped, and says so.

The device here is deterministic: its "latency" of an ONNX file is the sum of the output channels
of every convolution, tripled for odd channel counts (as odd counts defeat a CPU's vector units),
and doubled for an INT8 (QDQ) graph (as ORT is for tiny networks on this machine). So the verdicts
do not depend on the load of the machine running the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from slimforge.compress import GateConfig, compress
from slimforge.compress.recipe import Gatekeeper
from slimforge.data import DatasetSplits, load_dataset
from slimforge.hardware.devices import Device, DeviceInfo, DeviceMeasurement, prepare_onnx
from slimforge.io import build_model, load_model
from slimforge.training import TrainSettings, train_classifier

CONFIG = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.25}}


class ChannelCountDevice(Device):
    """A device whose latency is a pure function of the graph (see the module docstring)."""

    kind = "fake-channels"
    runtime = "fake"

    def describe(self) -> DeviceInfo:
        return DeviceInfo(kind=self.kind, name=self.kind, runtime="fake", runtime_version="1")

    def _prepare(self, model, shape, onnx_path, need_hash):
        return prepare_onnx(model, shape, onnx_path, self.spec)

    def _measure(self, models, settings):
        return [self._one(m) for m in models]

    def _one(self, model) -> DeviceMeasurement:
        return DeviceMeasurement(
            device=self.kind, device_info=self.describe(), model=model.label, model_sha256=model.sha256,
            input_shape=model.input_shape, threads=1, precision=model.precision, source="measured",
            latency_ms=fake_latency(model.onnx_path), latency_ms_iqr=0.0, stable=True, latency=None,
            energy_mj=None, energy_source="not requested",
        )


def fake_latency(path: Path) -> float:
    graph = onnx.load(str(path)).graph
    channels = [init.dims[0] for init in graph.initializer if len(init.dims) == 4]
    cost = sum(c * (3 if c % 2 else 1) for c in channels) / 100.0
    int8 = any(n.op_type == "QuantizeLinear" for n in graph.node)
    return cost * (2.0 if int8 else 1.0)


@pytest.fixture(scope="module")
def small() -> DatasetSplits:
    full = load_dataset("digits", image_size=8)
    return DatasetSplits(
        train=full.train.subset(np.arange(128)),
        val=full.val.subset(np.arange(48)),
        test=full.test.subset(np.arange(48)),
        spec=full.spec,
    )


@pytest.fixture(scope="module")
def trained(small) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(CONFIG)
    train_classifier(model, small.train, TrainSettings(epochs=2, batch_size=32, lr=0.1))
    return model


def _run(model, small, recipe, out, objective="latency"):
    return compress(
        model, small, recipe, out, model_config=CONFIG, finetune_epochs=0, latency_time_cap_s=0.05,
        calibration_images=16, gate=GateConfig(objective=objective, rounds=2, time_cap_s=0.02),
        device=ChannelCountDevice(),
    )


@pytest.mark.slow
def test_bad_rounding_is_dropped_and_the_input_goes_on(trained, small, tmp_path):
    report = _run(trained, small, "prune:l1:0.3:round_to=1", tmp_path / "out")
    original, pruned = report.stages
    assert fake_latency(tmp_path / "out" / pruned.onnx_file) > fake_latency(tmp_path / "out" / original.onnx_file)
    assert pruned.decision == "dropped" and "slower" in pruned.decision_reason and pruned.applied_to == 0
    assert report.kept_stage == 0 and "dropped by the measured gate" in report.message
    kept = load_model(tmp_path / "out" / "model")
    assert sum(p.numel() for p in kept.parameters()) == original.num_params
    text = (tmp_path / "out" / "compression.txt").read_text()
    assert "dropped" in text


@pytest.mark.slow
def test_auto_rounding_repairs_pruning_by_measurement(trained, small, tmp_path):
    report = _run(trained, small, "prune:l1:0.3", tmp_path / "out")
    original, pruned = report.stages
    timing = report.details["01 prune:l1:0.3"]["round_to_timing"]
    chosen = report.details["01 prune:l1:0.3"]["prune"]["round_to"]
    ratios = dict(zip(timing["labels"][1:], timing["ratio"][1:]))
    assert ratios["round_to=1"] > 1.0  # the unrounded structure is slower than the input here
    assert ratios[f"round_to={chosen}"] == min(ratios.values())
    assert pruned.decision == "kept" and report.kept_stage == 1
    assert fake_latency(tmp_path / "out" / pruned.onnx_file) < fake_latency(tmp_path / "out" / original.onnx_file)
    assert any("chosen by measurement" in n for n in pruned.notes)


@pytest.mark.slow
def test_slower_int8_is_dropped_for_latency_and_kept_for_size(trained, small, tmp_path):
    report = _run(trained, small, "quantize:int8", tmp_path / "lat")
    assert report.stages[1].decision == "dropped" and report.kept_stage == 0
    assert not _is_int8(tmp_path / "lat" / "model.onnx")
    report = _run(trained, small, "quantize:int8", tmp_path / "size", objective="size")
    int8 = report.stages[1]
    assert int8.onnx_bytes < report.stages[0].onnx_bytes
    assert int8.decision == "kept" and "SLOWER" in int8.decision_reason and report.kept_stage == 1
    assert _is_int8(tmp_path / "size" / "model.onnx")


def test_weight_only_stages_are_not_timed():
    class Finetune:
        changes_structure, final, text = False, False, "finetune"

    gate = Gatekeeper(GateConfig(), (1, 3, 8, 8), device=ChannelCountDevice())
    verdict = gate.judge(Finetune(), Path("a.onnx"), Path("b.onnx"), 10, 10)
    assert verdict.decision == "unchecked" and "weights only" in verdict.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "speed"}, "not one of latency, size, none"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"threads": 0}, "threads"),
        ({"rounds": 0}, "rounds"),
    ],
)
def test_bad_gate_settings_name_the_value(kwargs, message):
    with pytest.raises(Exception, match=message):
        GateConfig(**kwargs)


def test_round_to_below_one_is_refused_before_any_work():
    from slimforge.compress import parse_stages
    from slimforge.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="round_to=0"):
        parse_stages("prune:l1:0.3:round_to=0")
    assert parse_stages("prune:l1:0.3:round_to=auto")[0].round_to is None


def _is_int8(path: Path) -> bool:
    return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)
