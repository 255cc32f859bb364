"""Your own model, data and search space, by reference, from the CLI and the public API (issue 19)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
import yaml

import slimforge
from slimforge.cli import main
from slimforge.data import load_dataset
from slimforge.io import ReferenceError, load_model, open_model, save_model

MODULE = textwrap.dedent('''
    import numpy as np
    from torch import nn

    from slimforge.spaces import SearchSpace


    def TinyCNN(num_classes=10, width=8):
        return nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
        )


    class TinySpace(SearchSpace):
        """Two genes: the first layer's width (4 or 8) and the kernel size (1 or 3)."""

        name = "tiny"

        @property
        def num_choices(self):
            return [2, 2]

        def _build(self, genome, num_classes):
            width, kernel = (4, 8)[genome[0]], (1, 3)[genome[1]]
            return nn.Sequential(nn.Conv2d(3, width, kernel, padding=kernel // 2), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


    def arrays():
        rng = np.random.default_rng(0)
        return {"x_train": (rng.random((64, 3, 16, 16)) * 255).astype(np.uint8), "y_train": np.arange(64) % 4,
                "x_test": (rng.random((16, 3, 16, 16)) * 255).astype(np.uint8), "y_test": np.arange(16) % 4}


    def not_a_model():
        return 42


    def raises():
        raise RuntimeError("broken factory")
''')


@pytest.fixture
def user(tmp_path):
    (tmp_path / "mine.py").write_text(MODULE)
    (tmp_path / "raises_on_import.py").write_text("raise ValueError('cannot import me')\n")
    return tmp_path


def test_a_factory_model_saves_with_its_reference_and_reloads_without_registration(user, tmp_path):
    source = open_model(f"{user}/mine.py:TinyCNN", num_classes=4, model_args={"width": 4})
    assert source.config["builder"] == "factory" and source.config["kwargs"] == {"num_classes": 4, "width": 4}
    save_model(source.model, {**source.config, "input_shape": [1, 3, 16, 16]}, tmp_path / "saved")
    reloaded = load_model(tmp_path / "saved")
    for a, b in zip(source.model.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(a, b)
    # weights: a plain state_dict file for the factory's network
    torch.save(source.model.state_dict(), tmp_path / "w.pt")
    trained = open_model(f"{user}/mine.py:TinyCNN", num_classes=4, model_args={"width": 4}, weights=tmp_path / "w.pt")
    assert trained.trained and torch.equal(next(iter(trained.model.state_dict().values())),
                                           next(iter(source.model.state_dict().values())))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("mine.py:missing", "mine.py has no 'missing'"),
        ("mine.py:not_a_model", "returned a int, not a torch nn.Module"),
        ("mine.py:raises", "raised RuntimeError: broken factory"),
        ("raises_on_import.py:anything", "importing raises_on_import.py raised ValueError: cannot import me"),
        ("nothere.py:f", "no such file"),
        ("no_such_package.models:f", "no module named 'no_such_package'"),
    ],
)
def test_bad_references_are_one_line_naming_the_reference(user, tmp_path, capsys, ref, message):
    spec = f"{user}/{ref}" if ".py:" in ref else ref
    with pytest.raises(ReferenceError, match=message.replace("(", r"\(")):
        open_model(spec)
    assert main(["profile", spec, "--no-latency"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and spec.split(":")[0] in err


def test_profile_measure_and_the_api_take_a_factory(user, capsys):
    ref = f"{user}/mine.py:TinyCNN"
    assert main(["profile", ref, "--model-arg", "width=4", "--input", "1x3x16x16", "--no-latency", "--json"]) == 0
    counted = sum(p.numel() for p in open_model(ref, model_args={"width": 4}).model.parameters())
    assert json.loads(capsys.readouterr().out)["num_params"] == counted
    profile = slimforge.profile(ref, (1, 3, 16, 16), measure_latency=False, model_args={"width": 4, "num_classes": 4})
    assert profile.num_params == sum(p.numel() for p in open_model(ref, num_classes=4, model_args={"width": 4}).model.parameters())
    assert main(["measure", ref, "--input", "1x3x16x16", "--time-cap", "0.1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["measurement"]["latency_ms"] > 0


def test_data_of_your_own_csv_and_python(user, tmp_path):
    from PIL import Image

    rows = ["path,label,split"]
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{'cat' if i % 2 else 'dog'},{'test' if i >= 10 else 'train'}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    splits = load_dataset(f"csv:{tmp_path / 'data.csv'}", val_count=2)
    assert splits.train.class_names == ("cat", "dog") and len(splits.test) == 2 and len(splits.val) == 2
    arrays = load_dataset(f"{user}/mine.py:arrays")
    assert arrays.num_classes == 4 and len(arrays.test) == 16
    assert load_dataset(f"python:{user}/mine.py:arrays").num_classes == 4
    with pytest.raises(Exception, match="raised RuntimeError: broken factory"):
        load_dataset(f"{user}/mine.py:raises")


def test_a_space_of_your_own_by_reference_passes_the_contract(user):
    from slimforge.testing.spaces import SpaceContract

    space = slimforge.get_space(f"{user}/mine.py:TinySpace")
    assert space.size == 4 and space.build((1, 1), num_classes=3)(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    contract = SpaceContract()
    for name in dir(contract):
        if name.startswith("test_"):
            getattr(contract, name)(space)
    with pytest.raises(Exception, match="has no weight-sharing supernet"):
        space.supernet(3)


@pytest.mark.slow
def test_search_and_run_with_your_own_space_model_and_data(user, tmp_path, capsys):
    space = f"{user}/mine.py:TinySpace"
    result = slimforge.search(space, "num_params,macs", budget=4, algorithm="random", input_shape="1x3x16x16")
    assert result.num_evaluations == 4
    config = {
        "data": f"{user}/mine.py:arrays",
        "space": {"name": space},
        "accuracy": {"source": "supernet", "calibration": {"size": 0}},
        "search": {"budget": 4, "algorithm": "random", "objectives": ["num_params", "macs"]},
        "select": {"rule": "best", "objective": "num_params", "cost": "macs"},
        "retrain": {"mode": "scratch", "epochs": 1, "reference": [f"{user}/mine.py:TinyCNN"], "reference_epochs": 1},
        "compress": {"recipe": "none"},
        "devices": [{"name": "cpu", "spec": "local-cpu", "cost": "measure", "time_cap_s": 0.05}],
        "measure": {"time_cap_s": 0.1, "rounds": 2},
        "report_png": False,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    chosen = out["summary"]["chosen"][0]
    assert chosen["reference"]["name"] == "ref-TinyCNN" and chosen["latency"]["deployed_ms"] > 0
    # the same run through the public API, from the config mapping
    summary = slimforge.run(config, tmp_path / "api-run", threads=1)
    assert summary is not None and (tmp_path / "api-run" / "report.html").is_file()


@pytest.mark.slow
def test_compress_takes_a_factory_by_reference(user, tmp_path, capsys):
    ref = f"{user}/mine.py:TinyCNN"
    assert main(["compress", ref, "--check", "--input", "1x3x16x16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    out = tmp_path / "pruned"
    argv = ["compress", ref, "--model-arg", "width=8", "--model-arg", "num_classes=4", "--data", f"{user}/mine.py:arrays",
            "--recipe", "prune:l1:0.5", "--finetune-epochs", "0", "--gate", "none", "--out", str(out), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    first, last = report["stages"][0], report["stages"][report["kept_stage"]]
    assert report["kept_stage"] >= 1 and last["num_params"] < first["num_params"]
    reloaded = load_model(out / "model")
    assert reloaded(torch.zeros(1, 3, 16, 16)).shape == (1, 4)
    assert main(["compress", ref, "--model-arg", "width=8", "--train", "--out", str(tmp_path / "t")]) == 2
    assert "--model-arg" in capsys.readouterr().err


def test_export_takes_a_factory_by_reference(user, tmp_path, capsys):
    ref = f"{user}/mine.py:TinyCNN"
    out = tmp_path / "onnx"
    argv = ["export", ref, "--model-arg", "width=4", "--format", "onnx", "--input", "1x3x16x16", "--out", str(out), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) and any(out.glob("*.onnx"))
    api = slimforge.export(ref, "onnx", tmp_path / "api", input_shape=(1, 3, 16, 16), model_args={"width": 4})
    assert any((tmp_path / "api").glob("*.onnx")) and api is not None
    assert main(["export", f"{user}/mine.py:not_a_model", "--format", "onnx", "--out", str(tmp_path / "bad")]) == 2
    assert "not_a_model" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_an_entry_point_that_is_not_a_space_is_one_line(user, monkeypatch, capsys):
    import importlib.metadata as metadata

    monkeypatch.syspath_prepend(str(user))
    points = [metadata.EntryPoint(name="notaspace", value="mine:TinyCNN", group="slimforge.spaces"),
              metadata.EntryPoint(name="brokenspace", value="raises_on_import:x", group="slimforge.spaces")]
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [p for p in points if p.group == group])
    with pytest.raises(Exception, match="notaspace.*not a slimforge.spaces.SearchSpace"):
        slimforge.get_space("notaspace")
    with pytest.raises(Exception, match="brokenspace.*failed to import: ValueError"):
        slimforge.get_space("brokenspace")
    assert main(["search", "--space", "notaspace", "--objectives", "num_params,macs", "--budget", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notaspace" in err
