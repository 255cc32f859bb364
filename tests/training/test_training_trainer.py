"""The shared classifier trainer: training, hooks, settings, baselines, the deprecated compress alias."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.data import ArrayDataset, Normalization, load_dataset
from slimforge.errors import InvalidInputError
from slimforge.training import (
    TrainHook,
    TrainSettings,
    accuracy,
    resolve_model,
    train_baseline,
    train_classifier,
)
from slimforge.zoo import create_model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_split() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(32, dtype=np.int64) % 10
    return ArrayDataset(images, labels, tuple(map(str, range(10))), Normalization((0.5,) * 3, (0.25,) * 3))


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20", num_classes=10, width=0.25).eval()


def test_trainer_reduces_loss_and_leaves_eval_mode(tiny_split):
    model = _resnet()
    result = train_classifier(
        model, tiny_split, TrainSettings(epochs=3, batch_size=16, lr=0.05, label_smoothing=0.1)
    )
    assert result.steps == 6 and len(result.loss_per_epoch) == 3
    assert result.loss_per_epoch[-1] < result.loss_per_epoch[0]
    assert not model.training


class _Counting(TrainHook):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def attach(self, model: nn.Module) -> None:
        self.calls.append("attach")

    def after_backward(self, model: nn.Module) -> None:
        self.calls.append("backward")

    def after_step(self, model: nn.Module) -> None:
        self.calls.append("step")

    def detach(self, model: nn.Module) -> None:
        self.calls.append("detach")


def test_hooks_run_around_every_step_and_detach_on_error(tiny_split):
    hook = _Counting()
    train_classifier(_resnet(), tiny_split, TrainSettings(epochs=1, batch_size=16), hooks=[hook])
    assert hook.calls == ["attach", "backward", "step", "backward", "step", "detach"]
    hook = _Counting()
    with pytest.raises(InvalidInputError, match="diverged"):
        train_classifier(_resnet(), tiny_split, TrainSettings(epochs=1, batch_size=16, lr=1e30), hooks=[hook])
    assert hook.calls[0] == "attach" and hook.calls[-1] == "detach"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": -1}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": float("inf")}, "lr"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_bad_settings_name_the_value(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        TrainSettings(**kwargs)
    assert TrainSettings.from_json(TrainSettings(epochs=2).to_json()) == TrainSettings(epochs=2)


def test_compress_train_config_is_a_deprecated_alias():
    from slimforge import compress

    with pytest.warns(DeprecationWarning, match="TrainSettings"):
        alias = compress.TrainConfig
    assert alias is TrainSettings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from slimforge.compress import auto_prune  # noqa: F401 - other names do not warn


def test_resolve_model_copies_a_module_and_needs_its_config():
    model = _resnet()
    config = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.25}}
    source = resolve_model(model, num_classes=10, config=config)
    assert source.model is not model and source.trained and source.label == "resnet20"
    with pytest.raises(InvalidInputError, match="needs its config"):
        resolve_model(model, num_classes=10)
    with pytest.raises(InvalidInputError, match="neither a saved"):
        resolve_model("no/such/dir", num_classes=10)


@pytest.mark.slow
def test_train_baseline_saves_a_reloadable_model_and_its_record(tmp_path):
    from slimforge.io import load_model

    splits = load_dataset("digits", image_size=8, seed=0)
    result = train_baseline("resnet20", splits, tmp_path / "base", TrainSettings(epochs=1), width=0.25)
    reloaded = load_model(tmp_path / "base")
    assert accuracy(reloaded, splits.val) == pytest.approx(result.val_accuracy_pct)
    doc = json.loads((tmp_path / "base" / "train.json").read_text())
    assert doc["config"]["epochs"] == 1 and type(result).from_dict(doc) == result
