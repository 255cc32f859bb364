"""`slimforge bench spaces`: CIFAR zoo networks, the config, a tiny end-to-end run with INT8 deployment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.cli import main
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.bench import BENCH_SPACES, SpacesConfig, SpacesResult, ZooEntry
from slimforge.bench._spaces_config import cifar_zoo_model, parse_zoo

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


def _last_feature_side(model: nn.Module) -> int:
    sides = []
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for m in convs]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return sides[-1]


@pytest.mark.parametrize(
    "entry, side",
    [("shufflenet_v2:0.5", 2), ("mobilenet_v2:0.35", 4), ("efficientnet_b0:0.35", 4)],
)
def test_zoo_networks_get_the_stride_of_the_space_they_are_compared_with(entry, side):
    # ShuffleSpace: total stride 16 (32 -> 2); MobileSpace: 8 (32 -> 4).
    model = cifar_zoo_model(parse_zoo(entry), num_classes=10, seed=0)
    assert _last_feature_side(model) == side
    again = cifar_zoo_model(parse_zoo(entry), num_classes=10, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_zoo_entries_and_config_validation():
    assert parse_zoo("mobilenet_v2") == ZooEntry("mobilenet_v2", 1.0)
    assert parse_zoo("mobilenet_v2:0.35").key == "mobilenet_v2-w0.35"
    with pytest.raises(UnknownNameError, match="did you mean"):
        parse_zoo("mobilenet_v9:0.5")
    with pytest.raises(InvalidInputError, match="positive width"):
        parse_zoo("mobilenet_v2:zero")
    config = SpacesConfig(scale="study")
    assert config.zoo == ("shufflenet_v2:1.0", "mobilenet_v2:1.0", "efficientnet_b0:1.0")
    assert config.space_kwargs("mbv2-id")["stage_depths"] == [4, 4, 4, 4, 3, 1]
    assert config.space_kwargs("shufflenet")["identity"] is False
    assert SpacesConfig.from_dict(config.to_dict()) == config
    labels = [BENCH_SPACES.get(n).label for n in SpacesConfig().spaces]
    assert labels == ["ShuffleSpace", "ShuffleSpace+I", "MobileSpace+I"]
    with pytest.raises(UnknownNameError):
        SpacesConfig(spaces=("mbv3",))
    with pytest.raises(InvalidInputError, match="twice"):
        SpacesConfig(spaces=("mbv2-id", "mbv2-id"))
    with pytest.raises(InvalidInputError, match="budget"):
        SpacesConfig(budget=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not (SHARED / "cifar10_subset.npz").exists():
        pytest.skip(f"reference data {SHARED} is absent (see /work/shared/data/README.md)")
    root = tmp_path_factory.mktemp("spaces")
    data = np.load(SHARED / "cifar10_subset.npz")
    np.savez(
        root / "tiny.npz",
        x_train=data["x_train"][:40],
        y_train=data["y_train"][:40],
        x_test=data["x_test"][:16],
        y_test=data["y_test"][:16],
    )
    np.savez(root / "no_test.npz", x_train=data["x_train"][:40], y_train=data["y_train"][:40])
    return root


TINY_ARGS = [
    "--spaces", "shufflenet-id", "--zoo", "shufflenet_v2:0.5", "--epochs", "1", "--batch-size", "8",
    "--val-fraction", "0.25", "--budget", "5", "--set", "pop_size=3", "--set", "n_parents=2",
    "--set", "n_crossover=1", "--set", "n_mutation=1", "--set", "n_random=0", "--bn-images", "8",
    "--calibration-images", "4", "--search-time-cap", "0.05", "--final-time-cap", "0.05", "--final-max", "2",
    "--train-device", "cpu", "--no-progress", "--json",
]  # fmt: skip


@pytest.mark.slow
def test_end_to_end_fronts_zoo_points_and_resume(tiny, capsys):
    out = tiny / "run"
    argv = ["bench", "spaces", "--out", str(out), "--data", f"npz:{tiny / 'tiny.npz'}", *TINY_ARGS]
    assert main(argv) == 0
    result = SpacesResult.from_dict(json.loads(capsys.readouterr().out))
    groups = [p.group for p in result.points]
    assert groups.count("zoo") == 1 and 1 <= groups.count("shufflenet-id") <= 2
    for p in result.points:
        assert 0 <= p.int8_error_pct <= 100 and 0 <= p.fp32_error_pct <= 100 and p.latency_ms > 0
        assert p.num_params > 0
        assert p.weights == ("trained" if p.group == "zoo" else "retrained")
    # The study's protocol: each front network trained standalone, from fresh weights, with the zoo budget.
    trained = sorted((out / "retrained" / "shufflenet-id").glob("*/train.json"))
    zoo_settings = json.loads((out / "zoo" / "shufflenet_v2-w0.5" / "train.json").read_text())["settings"]
    assert len(trained) == groups.count("shufflenet-id") and not (out / "final").exists()
    for path in trained:
        settings = json.loads(path.read_text())["settings"]
        assert settings["train"] == zoo_settings["train"] and settings["data"] == zoo_settings["data"]
        assert settings["arch"] in {p.arch for p in result.points}
    space_points = [p for p in result.points if p.group == "shufflenet-id"]
    for p in space_points:
        if p.on_front:  # nothing in its space is at least as fast and as accurate, and better in one
            assert not any(
                q.latency_ms <= p.latency_ms and q.int8_error_pct <= p.int8_error_pct and q != p
                and (q.latency_ms < p.latency_ms or q.int8_error_pct < p.int8_error_pct)
                for q in space_points
            )
    assert [(c["space"], c["zoo"]) for c in result.comparisons] == [("shufflenet-id", "shufflenet_v2:0.5")]
    search = result.searches["shufflenet-id"]
    assert search["num_evaluations"] <= 5 and set(search["finalists"]) == {p.arch for p in space_points}
    assert result.measurement["num_networks"] == len(result.points)
    protocol = result.measurement["protocol_text"]
    assert "LatencyProtocol" in protocol and "400 runs" in protocol
    assert (out / "spaces_fronts.png").stat().st_size > 0
    assert "ShuffleSpace+I" in (out / "spaces_table.md").read_text()

    # Again: everything comes from the directory, measurements included.
    assert main(argv) == 0
    again = SpacesResult.from_dict(json.loads(capsys.readouterr().out))
    assert again.points == result.points
    assert again.measurement["num_cached"] == len(again.points)

    # --no-retrain deploys the same finalists with their supernet weights, beside the retrained ones.
    assert main([*argv, "--no-retrain"]) == 0
    inherited = SpacesResult.from_dict(json.loads(capsys.readouterr().out))
    space = [p for p in inherited.points if p.group != "zoo"]
    assert {p.weights for p in space} == {"inherited"}
    assert len(list((out / "final").rglob("final.json"))) == len(space)
    assert {p.arch for p in space} == {p.arch for p in space_points}
    assert "supernet weights" in (out / "spaces_table.md").read_text()


def test_retrained_weights_of_other_settings_are_refused(tmp_path):
    from slimforge.bench._spaces_train import train_standalone

    splits = type("Splits", (), {"train": None})()  # never read: the directory answers first
    directory = tmp_path / "net"
    directory.mkdir()
    torch.save(nn.Linear(2, 2).state_dict(), directory / "model.pt")
    (directory / "train.json").write_text(json.dumps({"settings": {"arch": "other"}}))
    with pytest.raises(InvalidInputError, match="other settings"):
        train_standalone(
            nn.Linear(2, 2), {"arch": "mine"}, directory, splits, SpacesConfig(), progress=False, desc="x"
        )
    with pytest.raises(InvalidInputError, match="retrain must be true or false"):
        SpacesConfig(retrain="yes")


def test_bad_input_is_one_line_and_writes_nothing(tiny, capsys):
    out = tiny / "never"
    no_test = f"npz:{tiny / 'no_test.npz'}"
    assert main(["bench", "spaces", "--out", str(out), "--data", no_test, *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "no test part" in err and len(err.splitlines()) == 1
    assert main(["bench", "spaces", "--out", str(out), "--zoo", "shufflenet_v2:0.7"]) == 2
    assert "no width=0.7" in capsys.readouterr().err
    assert not out.exists()
