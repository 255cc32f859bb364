"""``slimforge run`` under torchrun (issue 22): two gloo processes make one run directory, rank 0 alone
prints, the result records the world size, and a global batch that does not divide over the processes
is refused in one line before anything is written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slimforge.cli import main

TINY = {
    "data": "digits",
    "space": {"name": "mbv2", "options": {"width": 0.35, "resolution": 32, "stage_depths": [1, 1, 1, 1, 1, 1]}},
    "supernet": {"epochs": 1, "lr": 0.05, "batch_size": 32},
    "accuracy": {"bn_images": 32, "eval_images": 64, "calibration": {"size": 0}},
    "devices": [{"name": "cpu", "spec": "local-cpu", "cost": "lut", "time_cap_s": 0.02, "lut_calibration": 0}],
    "search": {"budget": 4, "settings": {"pop_size": 4}},
    "retrain": {"epochs": 1, "batch_size": 32, "reference": ["mobilenet_v2"], "reference_widths": [0.35],
                "reference_epochs": 1},
    "compress": {"recipe": "none"},
    "measure": {"time_cap_s": 0.05, "rounds": 2},
    "threads": 1,
    "report_png": False,
}


def _config(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **overrides}))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "slimforge", *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_run_under_torchrun_trains_on_two_processes_and_rank_0_alone_writes_and_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    out = tmp_path / "runs" / "tiny"
    done = _torchrun(["run", str(config), "--out", str(out), "--no-progress", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing
    assert result["world_size"] == 2
    assert set(result["stages"].values()) == {"done"}
    assert result["run_dir"] == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # one run directory, no half-made one
    assert done.stderr.count("[1/10] supernet") == 1  # stage lines from rank 0 only
    assert done.stderr.count("[5/10] retrain") == 1
    assert (out / "supernet" / "checkpoint.pt").is_file()
    assert list((out / "models").glob("*/trained/model.json"))
    assert list((out / "references").glob("*/trained/model.json"))

    # The same run in one process afterwards reuses every stage, and its output has no world_size.
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert "world_size" not in again and again["resumed"] == list(result["stages"])


def test_global_batch_not_dividing_over_the_processes_is_one_line_exit_2_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, supernet={**TINY["supernet"], "batch_size": 33})
    out = tmp_path / "run"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "supernet.batch_size 33 does not divide over 2 processes" in err and "multiple of 2" in err
    assert not out.exists()
    monkeypatch.setenv("RANK", "1")  # the other rank refuses as well, silently: rank 0 says why
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == captured.out == ""
    assert not out.exists()


def test_retrain_batch_is_checked_too_and_a_single_process_run_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, retrain={**TINY["retrain"], "batch_size": 30})
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "retrain.batch_size 30 does not divide over 4 processes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "3")
    assert main(["run", str(config), "--print-config"]) == 0  # --print-config / --check: rank 0 alone
    assert capsys.readouterr().out == ""


NB201 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"


@pytest.mark.skipif(not (NB201 / "accuracy_cifar10.csv").is_file(), reason="../shared/data/nb201 is absent")
def test_bench_under_torchrun_runs_on_rank_0_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "tabular", "--accuracy", str(NB201 / "accuracy_cifar10.csv"),
            "--device", f"table:{NB201 / 'device_pi5_onnxruntime.csv'}", "--algorithm", "random",
            "--budget", "20", "--json"]
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)  # restored after the test, whatever the command sets
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""  # rank 1 leaves at once
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["algorithm"] == "random"
    assert "rank 0 runs it" in captured.err
    assert os.environ["WORLD_SIZE"] == "1"  # what it ran under: one process, no process group


def test_a_numbered_gpu_under_torchrun_is_refused() -> None:
    from slimforge.runs import RunConfig
    from slimforge.runs._parallel import check_world
    from slimforge.runs.config import ConfigError

    config = RunConfig.from_dict(TINY)
    with pytest.raises(ConfigError, match="each process trains on its own GPU"):
        check_world(config, 2, ("cuda:1", "cuda:1"))
    check_world(config, 2, ("cuda:0", "cuda:0"))
    check_world(config, 2, ("cpu", "cpu"))
