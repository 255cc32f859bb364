"""``slimforge profile`` and ``slimforge zoo --profile`` through ``slimforge.cli.main``."""

from __future__ import annotations

import json

import pytest
import torch

from slimforge.cli import main
from slimforge.hardware import ModelProfile, count_macs, export_onnx
from slimforge import io as model_io
from slimforge.zoo import create_model


@pytest.fixture(autouse=True)
def _one_thread(tmp_path, monkeypatch):
    # Run from an empty directory, so "nothing written" can be checked by listing it.
    monkeypatch.chdir(tmp_path)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_profile_zoo_model_json_round_trips(capsys) -> None:
    assert (
        main(["profile", "resnet20", "--input", "1x3x32x32", "--no-latency", "--json", "--weight-bits", "8"])
        == 0
    )
    profile = ModelProfile.from_json(capsys.readouterr().out)
    assert profile.model == "resnet20" and profile.input_shape == (1, 3, 32, 32)
    assert profile.macs == count_macs(create_model("resnet20"), (1, 3, 32, 32))
    assert profile.model_size_bytes == profile.num_params  # 8-bit weights: one byte each
    assert profile.latency is None


def test_profile_human_output_has_header_table_totals_and_latency(capsys) -> None:
    code = main(["profile", "squeezenet_1_1", "--input", "1x3x64x64", "--time-cap", "0.3", "--top", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("model") and "squeezenet_1_1" in lines[0]
    assert "1x3x64x64" in lines[1]
    assert "onnxruntime" in lines[2] and "1 thread" in lines[2] and "CPU" in lines[2]
    header = next(line for line in lines if line.split()[:3] == ["#", "layer", "type"])
    for column in ("output", "params", "MACs", "act", "MACs/B", "%MACs", "top"):
        assert column in header.split()
    assert sum(line.rstrip().endswith("*") for line in lines) == 3  # the top-3 layers are marked
    assert any(line.startswith("peak activation") for line in lines)
    assert any("MACs = FLOPs/2 for conv and linear" in line for line in lines)
    latency = next(line for line in lines if line.startswith("latency ") and "median" in line)
    assert "IQR" in latency and "runs" in latency


def test_profile_onnx_file_and_saved_model(capsys, tmp_path) -> None:
    model = create_model("resnet20", num_classes=10)
    export_onnx(model, (1, 3, 32, 32), tmp_path / "r.onnx")
    assert main(["profile", "r.onnx", "--no-latency", "--json"]) == 0
    from_onnx = ModelProfile.from_json(capsys.readouterr().out)
    assert from_onnx.source == "onnx" and from_onnx.input_shape == (1, 3, 32, 32)
    assert from_onnx.macs == count_macs(model, (1, 3, 32, 32))
    config = {
        "builder": "zoo",
        "name": "resnet20",
        "kwargs": {"num_classes": 10},
        "input_shape": [1, 3, 32, 32],
    }
    model_io.save_model(model, config, tmp_path / "saved")
    assert main(["profile", "saved", "--no-latency", "--json"]) == 0
    from_dir = ModelProfile.from_json(capsys.readouterr().out)
    assert from_dir.input_shape == (1, 3, 32, 32)  # the saved model's own input shape
    assert from_dir.num_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "mobilenet_v22"], "did you mean mobilenet_v2"),
        (["profile", "missing.onnx"], "missing.onnx"),
        (["profile", "junk.onnx"], "junk.onnx"),
        (["profile", "junk.txt"], "junk.txt"),
        (["profile", "empty_dir"], "model.json"),
        (["profile", "resnet20", "--input", "1x3x224"], "rank 3"),
        (["profile", "resnet20", "--input", "1xAx3"], "1xAx3"),
        (["profile", "resnet20", "--input", "1x3x0x32"], "positive"),
        (["profile", "resnet20", "--input", "1x1x32x32"], "takes 3"),
        (["profile", "squeezenet_1_1", "--input", "1x3x8x8"], "1x3x8x8"),
        (["profile", "resnet20", "--threads", "0"], "--threads"),
        (["profile", "resnet20", "--threads", "two"], "--threads"),
        (["profile", "resnet20", "--weight-bits", "0"], "--weight-bits"),
        (["profile", "resnet20", "--time-cap", "-1"], "--time-cap"),
        (["profile", "resnet20", "--device", "local-tvm"], "local-tvm"),
        (["profile", "resnet20", "--device", "remote:http://127.0.0.1:9"], "times the model on this machine"),
        (["zoo", "--profile", "--models", "resnet20,mobilenet_v22"], "did you mean mobilenet_v2"),
        pytest.param(
            ["zoo", "--profile", "--input", "1x3x224"], "rank 3", marks=pytest.mark.slow
        ),  # builds the whole zoo
        (["zoo", "--profile", "--threads", "0"], "--threads"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(argv, message, capsys, tmp_path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 definitely not protobuf \xff" * 3)
    (tmp_path / "junk.txt").write_text("hello")
    (tmp_path / "empty_dir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"slimforge {argv[0]}: error: ")
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_torch_runtime_refuses_an_onnx_file(capsys, tmp_path) -> None:
    export_onnx(create_model("resnet20", num_classes=10), (1, 3, 32, 32), tmp_path / "r.onnx")
    assert main(["profile", "r.onnx", "--device", "local-torch"]) == 2
    assert "--device local-cpu" in capsys.readouterr().err


def test_the_old_runtime_spelling_still_works_with_one_deprecation_line(capsys) -> None:
    assert main(["profile", "resnet20", "--runtime", "torch", "--time-cap", "0.05", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["latency"]["runtime"] == "torch"
    assert err.count("--runtime torch is deprecated, use --device local-*") == 1


@pytest.mark.slow
def test_demo_table_json_and_skipped_builds(capsys, monkeypatch) -> None:
    real = model_io.build_model

    def flaky(config):
        if config["name"] == "squeezenet_1_1":
            raise model_io.ModelBuildError(
                "model 'squeezenet_1_1' failed to build: ImportError: not written yet"
            )
        return real(config)

    monkeypatch.setattr(model_io, "build_model", flaky)
    argv = ["zoo", "--profile", "--models", "resnet20,squeezenet_1_1,mobilenet_v3_small", "--input", "1x3x32x32"]
    assert main([*argv, "--time-cap", "0.2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line and not line.startswith(("note", "skipped"))}
    assert {"resnet20", "mobilenet_v3_small"} <= rows and "squeezenet_1_1" not in rows
    assert "skipped squeezenet_1_1: model 'squeezenet_1_1' failed to build" in out
    assert "median ms" in out and "IQR ms" in out
    assert main([*argv, "--no-latency", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["model"] for p in document["profiles"]] == ["resnet20", "mobilenet_v3_small"]
    assert document["skipped"][0]["model"] == "squeezenet_1_1"
    assert all(ModelProfile.from_dict(p).latency is None for p in document["profiles"])
