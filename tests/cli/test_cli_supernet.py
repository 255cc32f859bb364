"""``slimforge supernet train|rank`` through ``main(argv)``: JSON output, a progress bar on stderr,
resume, ranking against a 5-row ground-truth table, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from scipy.stats import kendalltau

from slimforge.cli import main
from slimforge.spaces import SPACES, get_space

TABLE_ROWS = [
    (
        11,
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        93.66,
    ),
    (
        12,
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
        85.86,
    ),
    (13, "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|", 86.62),
    (14, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 10.0),
    (
        15,
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        91.2,
    ),
]


pytestmark = pytest.mark.usefixtures("one_thread", "progress_lines")


@pytest.fixture(scope="module")
def tiny_npz(tiny_npz_factory) -> str:
    return tiny_npz_factory(24)


def _train_argv(data: str, out: Path, *extra: str) -> list[str]:
    return [
        "supernet", "train", "--space", "nb201", "--space-arg", "channels=4", "--space-arg", "cells_per_stage=1",
        "--data", data, "--epochs", "1", "--batch-size", "8", "--out", str(out), "--json", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tiny_npz: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "spos"
    assert main(_train_argv(tiny_npz, out)) == 0
    return out


def _table(tmp_path: Path) -> Path:
    path = tmp_path / "acc.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "arch", "accuracy"])
        writer.writerows(TABLE_ROWS)
    return path


@pytest.mark.slow
def test_train_prints_json_and_a_progress_bar(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(_train_argv(tiny_npz, tmp_path / "run", "--stop-after-steps", "1")) == 0
    out, err = capsys.readouterr()
    first = json.loads(out)
    assert (first["steps"], first["total_steps"], first["finished"]) == (1, 3, False)
    assert "supernet fewshot" in err and "img_s=" in err and "epoch=1/1" in err
    assert main(_train_argv(tiny_npz, tmp_path / "run", "--resume")) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["resumed_from_step"], second["steps"], second["finished"]) == (1, 3, True)
    assert second["images_trained"] == 16


@pytest.mark.slow
def test_train_darts_derives_an_architecture(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(_train_argv(tiny_npz, tmp_path / "darts", "--method", "darts", "--val-fraction", "0.34")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["finished"] and result["method"] == "darts"
    assert get_space("nb201").from_string(result["derived_arch"])  # a valid NB201 string


@pytest.mark.slow
def test_rank_reports_tau_against_the_table(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["supernet", "rank", "--checkpoint", str(checkpoint), "--table", str(_table(tmp_path)), "--sample", "5",
            "--seed", "0", "--recal-images", "8", "--json"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["num_architectures"] == 5 and sorted(result["indices"]) == [11, 12, 13, 14, 15]
    truth = {row[0]: row[2] for row in TABLE_ROWS}
    assert result["true_accuracy_pct"] == [truth[i] for i in result["indices"]]
    tau = result["kendall_tau"]
    assert tau is None or -1.0 <= tau <= 1.0
    assert result["params_kendall_tau"] == pytest.approx(
        kendalltau(result["num_params"], result["true_accuracy_pct"]).statistic
    )
    assert (
        result["num_params"][result["indices"].index(14)] < result["num_params"][result["indices"].index(11)]
    )
    assert (result["num_eval_images"], result["num_recal_images"], result["eval_split"]) == (8, 8, "test")
    assert len(result["supernet_loss"]) == 5 and all(v > 0 for v in result["supernet_loss"])
    assert result["loss_kendall_tau"] is None or -1.0 <= result["loss_kendall_tau"] <= 1.0
    assert result["wall_time_s"] > 0 and result["images_per_s"] > 0
    assert "rank" in err
    # The same seed draws the same architectures and gives the same scores.
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["supernet_accuracy_pct"] == result["supernet_accuracy_pct"]


def _fails(argv: list[str], capsys: pytest.CaptureFixture, *fragments: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slimforge supernet: error:") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_bad_train_inputs_exit_2_with_one_line(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _fails(_train_argv(tiny_npz, tmp_path / "a", "--method", "spoz"), capsys, "'spoz'", "spos")
    _fails(_train_argv(tiny_npz, tmp_path / "b", "--space", "nb202"), capsys, "'nb202'", "nb201")
    _fails(_train_argv("npz", tmp_path / "c"), capsys, "npz")
    _fails(_train_argv(f"{tiny_npz}.missing", tmp_path / "d"), capsys, "missing")
    _fails(_train_argv(tiny_npz, tmp_path / "e", "--set", "order"), capsys, "KEY=VALUE")
    _fails(
        _train_argv(tiny_npz, tmp_path / "f", "--method", "darts", "--set", "order=3"),
        capsys,
        "order must be 1 or 2",
    )
    _fails(_train_argv(tiny_npz, tmp_path / "g", "--train-device", "cuda:0"), capsys, "cuda")
    _fails(_train_argv(tiny_npz, tmp_path / "h", "--epochs", "0"), capsys, "epochs")


@pytest.mark.slow
@pytest.mark.parametrize("space", [s for s in SPACES.list() if s != "nb201"])
def test_relaxation_methods_are_refused_on_layer_wise_spaces(
    space: str, tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [
        "supernet",
        "train",
        "--space",
        space,
        "--data",
        tiny_npz,
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--method",
        "darts",
    ]
    _fails(argv, capsys, "darts", "architecture weights")


def test_bad_rank_inputs_exit_2_with_one_line(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    table = _table(tmp_path)
    rank = ["supernet", "rank", "--table", str(table), "--sample", "5", "--json"]
    _fails([*rank, "--checkpoint", str(tmp_path / "nowhere")], capsys, "nowhere")
    _fails([*rank[:-3], "--sample", "6", "--checkpoint", str(checkpoint)], capsys, "exceeds the 5 rows")
    bad = tmp_path / "bad.csv"
    bad.write_text("index,arch\n1,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    _fails(["supernet", "rank", "--checkpoint", str(checkpoint), "--table", str(bad)], capsys, "accuracy")
    bad.write_text("index,arch,accuracy\n1,|conv~0|,50\n")
    _fails(["supernet", "rank", "--checkpoint", str(checkpoint), "--table", str(bad)], capsys, "conv")


def _mbv2_argv(data: str, out: Path, *extra: str) -> list[str]:
    return [
        "supernet", "train", "--space", "mbv2", "--space-arg", "width=0.25", "--space-arg", "resolution=16",
        "--space-arg", "stage_depths=[1,1,1,1,1,1]", "--data", data, "--epochs", "1", "--batch-size", "8",
        "--stop-after-steps", "1", "--out", str(out), "--json", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_layer_wise_space_trains_with_its_own_recipe_unless_told_otherwise(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from slimforge.supernet.checkpoint import read_run_config

    # mbv2's recipe (SPOS, affine choice BN) ranks there; nb201's few-shot, affine-free default does not.
    assert main(_mbv2_argv(tiny_npz, tmp_path / "recipe")) == 0
    config = read_run_config(tmp_path / "recipe")[0]
    assert (config.method, config.bn_affine) == ("spos", True) and "supernet spos" in capsys.readouterr().err
    assert main(_mbv2_argv(tiny_npz, tmp_path / "told", "--method", "fewshot", "--no-bn-affine")) == 0
    assert (read_run_config(tmp_path / "told")[0].method, read_run_config(tmp_path / "told")[0].bn_affine) == (
        "fewshot",
        False,
    )
    assert read_run_config(tmp_path / "told")[0].space_kwargs.get("sharing") is None  # the space's default: elastic
