"""Supernet checkpoints: state dicts loadable with weights_only=True, written atomically, and a run
stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.supernet import TrainConfig, TrainResult, load_supernet, train_supernet
from slimforge.supernet.checkpoint import CHECKPOINT_FILE, CONFIG_FILE, read_run_config, write_run_config

TINY_SPACE = {"channels": 4, "cells_per_stage": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_npz(tiny_npz_factory) -> str:
    return tiny_npz_factory(32)


def _config(data: str, method: str = "spos", **changes) -> TrainConfig:
    settings = {
        "epochs": 2,
        "space_kwargs": TINY_SPACE,
        "method": method,
        "batch_size": 8,
        "val_fraction": 0.25,
    }
    return TrainConfig(data=data, **{**settings, **changes})


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return torch.load(directory / CHECKPOINT_FILE, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "stop"), [("spos", 5), ("gdas", 4)])
def test_resume_after_interruption_gives_the_uninterrupted_weights(
    tiny_npz: str, tmp_path: Path, method: str, stop: int
) -> None:
    config = _config(tiny_npz, method)
    whole = train_supernet(config, tmp_path / "whole")
    assert whole.finished and whole.steps == whole.total_steps

    part = train_supernet(config, tmp_path / "split", stop_after_steps=stop)
    assert not part.finished and part.steps == stop
    rest = train_supernet(config, tmp_path / "split", resume=True)
    assert rest.finished and rest.resumed_from_step == stop and rest.steps == whole.steps

    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["trainer"]["generator"], b["trainer"]["generator"])
    if method == "gdas":
        assert torch.equal(a["trainer"]["alpha"], b["trainer"]["alpha"])
        assert rest.derived_arch == whole.derived_arch is not None
    assert rest.final_loss == pytest.approx(whole.final_loss)


def test_checkpoint_is_state_dicts_with_a_json_config(tiny_npz: str, tmp_path: Path) -> None:
    config = _config(tiny_npz, epochs=1)
    result = train_supernet(config, tmp_path, stop_after_steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE, CONFIG_FILE]  # no temp files left
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert state["trainer"]["step_count"] == 2 == result.steps
    assert isinstance(state["trainer"]["generator"], torch.Tensor)
    assert "momentum_buffer" in next(iter(state["trainer"]["optimizer"]["state"].values()))
    doc = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert (
        doc["config"]["space_kwargs"] == TINY_SPACE and doc["config"]["seed"] == 0 and doc["num_classes"] == 4
    )
    assert read_run_config(tmp_path)[0] == config
    supernet, loaded, _ = load_supernet(tmp_path)
    assert loaded == config and not supernet.training
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, state["model"][key])


def test_existing_checkpoints_are_never_overwritten_by_accident(tiny_npz: str, tmp_path: Path) -> None:
    train_supernet(_config(tiny_npz, epochs=1), tmp_path, stop_after_steps=1)
    with pytest.raises(InvalidInputError, match="--resume"):
        train_supernet(_config(tiny_npz, epochs=1), tmp_path)
    with pytest.raises(InvalidInputError, match="epochs: 2 vs 1"):
        train_supernet(_config(tiny_npz, epochs=2), tmp_path, resume=True)


def test_damaged_or_missing_checkpoints_raise_model_file_errors(tiny_npz: str, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="supernet train"):
        load_supernet(tmp_path)
    train_supernet(_config(tiny_npz, epochs=1), tmp_path, stop_after_steps=1)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="cannot be read"):
        load_supernet(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("{}")
    with pytest.raises(ModelFileError, match="not a slimforge supernet config"):
        load_supernet(tmp_path)


def test_format_1_mbv2_runs_keep_the_separate_weights_they_trained(tmp_path: Path) -> None:
    # The mbv2 supernet's default sharing became "elastic" in format 2; a format-1 run that named no
    # sharing trained separate weights, and must be rebuilt so to load its checkpoint.
    small = {"width": 0.35, "resolution": 32}
    write_run_config(
        tmp_path, TrainConfig(data="cifar10", epochs=1, space="mbv2", space_kwargs=small), 10, {}
    )
    assert read_run_config(tmp_path)[0].space_kwargs == small  # format 2: the space's own default
    path = tmp_path / CONFIG_FILE
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "format": "slimforge-supernet/1"}))
    assert read_run_config(tmp_path)[0].space_kwargs == {**small, "sharing": "separate"}
    doc["config"]["space_kwargs"] = {**small, "sharing": "elastic"}
    path.write_text(json.dumps({**doc, "format": "slimforge-supernet/1"}))
    assert read_run_config(tmp_path)[0].space_kwargs["sharing"] == "elastic"  # named: kept
    path.write_text(json.dumps({**doc, "format": "slimforge-supernet/0"}))
    with pytest.raises(ModelFileError, match="not a slimforge supernet config"):
        read_run_config(tmp_path)


def test_train_config_and_result_round_trip_through_json() -> None:
    config = TrainConfig(data="digits", epochs=3, method="darts", method_options={"order": 2}, seed=4)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert (config.lr, config.momentum, config.nesterov, config.weight_decay) == (0.025, 0.9, True, 5e-4)
    assert (config.arch_lr, config.arch_weight_decay, config.batch_size) == (3e-4, 1e-3, 64)
    result = TrainResult(
        "spos", "nb201", "digits", 1, 3, 3, True, float("nan"), 1.0, 2.0, 6, 0, "/tmp/x", None
    )
    back = TrainResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.to_dict() == result.to_dict()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"seed": -1}, "seed"),
        ({"method_options": {"x": object()}}, "JSON"),
        ({"nesterov": True, "momentum": 0.0}, "Nesterov"),
    ],
)
def test_bad_train_configs_raise(changes: dict, fragment: str) -> None:
    base = {"data": "digits", "epochs": 1}
    with pytest.raises(InvalidInputError, match=fragment):
        TrainConfig(**{**base, **changes})
    with pytest.raises(InvalidInputError, match="unknown training setting"):
        TrainConfig.from_dict({**base, "epoch": 3})
