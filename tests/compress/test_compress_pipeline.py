"""``compress``: stages in order, measured rows, the budget verdict, saved results that reload."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from slimforge.compress import CompressionReport, GateConfig, compress
from slimforge.data import DatasetSplits, load_dataset
from slimforge.io import build_model, load_model
from slimforge.training import TrainSettings, train_classifier

CONFIG = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.25}}


@pytest.fixture(scope="module")
def small() -> DatasetSplits:
    """8x8 digits: 256 training, 64 validation and 64 test images."""
    full = load_dataset("digits", image_size=8)
    return DatasetSplits(
        train=full.train.subset(np.arange(256)),
        val=full.val.subset(np.arange(64)),
        test=full.test.subset(np.arange(64)),
        spec=full.spec,
    )


@pytest.fixture(scope="module")
def trained(small) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(CONFIG)
    train_classifier(model, small.train, TrainSettings(epochs=8, batch_size=32, lr=0.1))
    return model


def _run(model, small, recipe, out, **kwargs) -> CompressionReport:
    options = {
        "model_config": CONFIG,
        "finetune_epochs": 1,
        "latency_time_cap_s": 0.05,
        "calibration_images": 32,
        # the measured gate has its own tests (test_compress_gate.py); these check the chain itself
        "gate": GateConfig(objective="none"),
    }
    return compress(model, small, recipe, out, **{**options, **kwargs})


@pytest.mark.slow
def test_chain_measures_every_stage_and_saves_a_reloadable_result(trained, small, tmp_path):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    report = _run(
        trained, small, "prune:l1:0.5,distill:teacher=self,quantize:int8", tmp_path / "out", compare=True
    )
    # The input model is never changed in place.
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    assert [r.stage for r in report.stages] == [
        "original",
        "prune:l1:0.5",
        "distill:teacher=self",
        "quantize:int8",
    ]
    original, pruned, _, int8 = report.stages
    assert pruned.num_params < 0.4 * original.num_params and pruned.macs < 0.4 * original.macs
    assert int8.macs == pruned.macs and report.kept_stage == 3 and report.budget_met
    assert [r.stage.split(":")[0] for r in report.comparisons] == [
        "torch-pruning direct",
        "onnxruntime quantize_static, defaults",
    ]
    out = tmp_path / "out"
    for name in ("model.onnx", "compression.json", "compression.txt", "model/model.json", "model/model.pt"):
        assert (out / name).is_file()
    assert CompressionReport.from_json((out / "compression.json").read_text()) == report
    assert "QuantizeLinear" in {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    config = json.loads((out / "model" / "model.json").read_text())
    assert config["builder"] == "compressed" and config["stages"] == [s.stage for s in report.stages[1:]]
    # The saved PyTorch model (the float model INT8 was made from) reloads from its config alone.
    import onnxruntime as ort

    reloaded = load_model(out / "model")
    x = torch.randn(1, 3, 8, 8)
    session = ort.InferenceSession(str(out / report.stages[2].onnx_file), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"input": x.numpy()})[0], reloaded(x).detach().numpy(), atol=1e-4)
    assert "torch-pruning direct" in (out / "compression.txt").read_text()


@pytest.mark.slow
def test_budget_that_cannot_be_met_keeps_the_best_model_so_far(trained, small, tmp_path):
    report = _run(
        trained,
        small,
        "prune:random:0.9,quantize:int8",
        tmp_path / "out",
        finetune_epochs=0,
        max_accuracy_drop=0.0,
    )
    assert not report.budget_met and report.kept_stage == 0
    assert "budget missed" in report.message and "(quantize:int8)" in report.message
    assert len(report.stages) == 3 and not any(r.within_budget for r in report.stages[1:])
    kept = load_model(tmp_path / "out" / "model")
    assert kept.stem[0].out_channels == trained.stem[0].out_channels


def test_bad_recipe_fails_before_any_work(trained, small, tmp_path):
    from slimforge.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="outside"):
        _run(trained, small, "prune:l1:1.2", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_overwritten_by_default(trained, small, tmp_path):
    from slimforge.errors import InvalidInputError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="overwrite"):
        _run(trained, small, "finetune", tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").exists()
