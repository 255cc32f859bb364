"""Saved slimforge models: model.json + model.pt, atomic writes, weights_only loading, clear errors."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch

from slimforge.errors import InvalidInputError, ModelFileError, SlimforgeError, UnknownNameError
from slimforge.io import (
    BUILDERS,
    ModelBuildError,
    build_model,
    load_model,
    read_model_config,
    save_model,
)
from slimforge.zoo import create_model

# The last parameter of the model (the classifier's bias), whatever the zoo calls its head.
HEAD_BIAS = list(create_model("resnet20", num_classes=10).state_dict())[-1]
CONFIG = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10}, "input_shape": [1, 3, 32, 32]}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def trained():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # weights that differ from a fresh build
    return model.eval()


def test_round_trip_gives_the_same_outputs(tmp_path, trained) -> None:
    out = save_model(trained, CONFIG, tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directory left
    document = json.loads((out / "model.json").read_text())
    assert document == {"format": "slimforge-model", "version": 1, **CONFIG}
    loaded = load_model(out)
    assert not loaded.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained(x))
    assert read_model_config(out / "model.json")["name"] == "resnet20"


def test_existing_directory_needs_overwrite(tmp_path, trained) -> None:
    out = save_model(trained, CONFIG, tmp_path / "m")
    with pytest.raises(InvalidInputError, match="already exists"):
        save_model(trained, CONFIG, out)
    with torch.no_grad():
        trained.get_parameter(HEAD_BIAS).fill_(3.0)
    save_model(trained, CONFIG, out, overwrite=True)
    assert torch.equal(load_model(out).get_parameter(HEAD_BIAS), torch.full((10,), 3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({**CONFIG, "kwargs": {"num_classes": 7}}, InvalidInputError, "does not rebuild"),
        ({**CONFIG, "builder": "zooo"}, UnknownNameError, "zoo"),
        ({k: v for k, v in CONFIG.items() if k != "builder"}, InvalidInputError, "builder"),
        ({**CONFIG, "input_shape": [1, "3"]}, InvalidInputError, "input_shape"),
        ({**CONFIG, "kwargs": {"num_classes": 10, "bogus": 1}}, SlimforgeError, "bogus"),
    ],
)
def test_bad_configs_raise_and_write_nothing(tmp_path, trained, config, error, match) -> None:
    with pytest.raises(error, match=match):
        save_model(trained, config, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_build_model_wraps_builder_failures(monkeypatch) -> None:
    def broken(name, **kwargs):
        raise ImportError(f"cannot import {name}")  # e.g. a zoo entry whose module is unfinished

    monkeypatch.setattr("slimforge.zoo.create_model", broken)
    assert "zoo" in BUILDERS
    with pytest.raises(ModelBuildError, match="'resnet20' failed to build: ImportError"):
        build_model({"builder": "zoo", "name": "resnet20"})


def test_missing_or_broken_saved_models_raise_model_file_errors(tmp_path, trained) -> None:
    with pytest.raises(ModelFileError, match="no such directory"):
        load_model(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="model.json"):
        load_model(tmp_path / "empty")
    out = save_model(trained, CONFIG, tmp_path / "m")
    (out / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="model.json"):
        load_model(out)
    (out / "model.json").write_text(json.dumps({**CONFIG, "format": "other", "version": 1}))
    with pytest.raises(ModelFileError, match="format"):
        load_model(out)
    (out / "model.json").write_text(json.dumps({**CONFIG, "format": "slimforge-model", "version": 99}))
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(out)


def test_weights_that_do_not_match_or_are_not_a_state_dict_raise(tmp_path, trained) -> None:
    out = save_model(trained, CONFIG, tmp_path / "m")
    state = trained.state_dict()
    state[HEAD_BIAS] = torch.zeros(3, 3)
    torch.save(state, out / "model.pt")
    with pytest.raises(ModelFileError, match=HEAD_BIAS):
        load_model(out)
    (out / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="model.pt"):
        load_model(out)


def test_pickled_objects_are_refused(tmp_path, trained) -> None:
    out = save_model(trained, CONFIG, tmp_path / "m")
    torch.save({HEAD_BIAS: Fraction(1, 3)}, out / "model.pt")  # an arbitrary object: needs pickle
    with pytest.raises(ModelFileError, match="cannot read weights"):
        load_model(out)
