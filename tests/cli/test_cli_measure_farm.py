"""``slimforge measure MODEL... --farm SPEC,SPEC`` (issue 22): models measured in parallel on two agents on
127.0.0.1 through the Ray measurement farm; bad input (an unreachable agent, options the farm does not
take, Ray missing) is one line, exit 2, and nothing is measured or written."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

from slimforge.cli import main
from slimforge.hardware import export_onnx
from slimforge.hardware.agent import AgentServer

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("farm-cli")
    torch.manual_seed(0)
    return [
        str(export_onnx(
            nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            (1, 3, 16, 16),
            folder / f"net{width}.onnx",
        ))
        for width in (4, 8, 12)
    ]


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    return str(path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _argv(models: list[str], farm: str, *extra: str) -> list[str]:
    return ["measure", *models, "--farm", farm, "--time-cap", "0.2", "--no-energy", "--threads", "1", *extra]


@pytest.mark.slow
def test_farm_measures_every_model_across_two_agents(models, token_file, tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'slimforge[ray]')")
    monkeypatch.chdir(tmp_path)
    with AgentServer(TOKEN, "127.0.0.1", 0) as a, AgentServer(TOKEN, "127.0.0.1", 0) as b:
        farm = f"remote:{a.url},remote:{b.url}"
        assert main(_argv(models, farm, "--token-file", token_file, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["farm"] == [f"remote:{a.url}", f"remote:{b.url}"] and out["lost"] == {}
    assert [m["model"] for m in out["measurements"]] == models  # in the order given
    assert all(m["measurement"]["latency_ms"] > 0 for m in out["measurements"])
    assert {m["device"] for m in out["measurements"]} <= set(out["farm"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]  # nothing written


@pytest.mark.slow
def test_unreachable_agent_is_one_line_naming_it_exit_2(models, token_file, tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'slimforge[ray]')")
    monkeypatch.chdir(tmp_path)
    dead = f"remote:http://127.0.0.1:{_closed_port()}"
    with AgentServer(TOKEN, "127.0.0.1", 0) as a:
        assert main(_argv(models, f"remote:{a.url},{dead}", "--token-file", token_file, "--timeout", "5")) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and dead.removeprefix("remote:") in err
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cache", "runs/x"], "--cache goes without --farm"),
        (["--repeat", "3"], "--repeat goes without --farm"),
        (["--device", "local-torch"], "--device goes without --farm"),
    ],
)
def test_options_the_farm_does_not_take_are_one_line(models, tmp_path, capsys, monkeypatch, extra, message) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_argv(models, "remote:http://127.0.0.1:1", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_several_models_need_a_farm_and_ray_missing_is_one_line(models, capsys, monkeypatch) -> None:
    assert main(["measure", *models[:2], "--time-cap", "0.2"]) == 2
    assert "measure one MODEL, or several in parallel with --farm" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert main(_argv(models, "remote:http://127.0.0.1:1")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--farm needs Ray" in err and "pip install 'slimforge[ray]'" in err


def test_one_model_without_farm_is_measured_as_before(models, capsys) -> None:
    assert main(["measure", models[0], "--time-cap", "0.2", "--no-energy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["measurement"]["latency_ms"] > 0
    assert os.path.isfile(models[0])
