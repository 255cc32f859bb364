"""``slimforge compress``: --check, --train, recipes, and one-line errors."""

from __future__ import annotations

import json

import pytest

from slimforge.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the command sets its own --threads


def test_check_lists_skipped_layers(capsys):
    assert main(["compress", "resnet20", "--width", "0.25", "--check", "--input", "1x3x8x8"]) == 0
    out = capsys.readouterr().out
    assert "skip classifier: output layer" in out and "stem.0" in out


def test_check_as_json(capsys):
    assert main(["compress", "resnet20", "--width", "0.25", "--check", "--input", "1x3x8x8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["skipped"][0]["layer"] == "classifier" and len(data["prunable"]) == 12


@pytest.mark.slow
def test_sensitivity_report_ranks_every_layer(capsys):
    argv = ["compress", "resnet20", "--width", "0.25", "--sensitivity", "--data", "digits", "--calib", "16", "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 22 and {"layer", "accuracy_drop_pct", "output_kl"} <= set(rows[0])
    assert [r["output_kl"] for r in rows] == sorted((r["output_kl"] for r in rows), reverse=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resnet20", "--recipe", "prune:l1:1.5", "--out", "OUT"], "outside (0, 1)"),
        (["resnet20", "--recipe", "shrink:0.5", "--out", "OUT"], "unknown compression stage 'shrink'"),
        (["resnet20", "--recipe", "prune:l1:0.5"], "--out"),
        (["resnet20", "--train"], "--out"),
        (
            ["resnet20", "--recipe", "prune:l1:0.5", "--out", "OUT", "--max-accuracy-drop", "-1"],
            "max-accuracy-drop",
        ),
        (["shufflenet_v2", "--width", "0.5", "--check", "--input", "1x3x8x8"], "does not trace"),
        (["no/such/dir", "--check"], "neither a saved"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(["compress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_train_then_compress_from_the_saved_model(capsys, tmp_path):
    base = tmp_path / "base"
    assert (
        main(
            [
                "compress",
                "resnet20",
                "--width",
                "0.25",
                "--train",
                "--data",
                "digits",
                "--epochs",
                "1",
                "--out",
                str(base),
            ]
        )
        == 0
    )
    assert "saved to" in capsys.readouterr().out
    train = json.loads((base / "train.json").read_text())
    assert train["config"]["epochs"] == 1 and 0 <= train["test_accuracy_pct"] <= 100
    out = tmp_path / "small"
    assert (
        main(
            [
                "compress",
                str(base),
                "--data",
                "digits",
                "--recipe",
                "prune:l2:0.5",
                "--finetune-epochs",
                "0",
                "--time-cap",
                "0.05",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "prune:l2:0.5" in text and (out / "model.onnx").is_file()
    report = json.loads((out / "compression.json").read_text())
    assert report["stages"][1]["num_params"] < report["stages"][0]["num_params"]
