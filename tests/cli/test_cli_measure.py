"""``slimforge measure``, ``slimforge agent`` and ``slimforge lut`` through ``main(argv)``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from torch import nn

from slimforge.cli import main
from slimforge.hardware import export_onnx
from slimforge.hardware.agent import AgentServer

A0 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A1 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
TOKEN = "cli-test-token-42"
FAST = ["--time-cap", "0.2"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    return export_onnx(net, (1, 3, 16, 16), tmp_path_factory.mktemp("cli") / "net.onnx")


@pytest.fixture()
def table_csv(tmp_path) -> Path:
    path = tmp_path / "pi.csv"
    path.write_text(f"index,arch,latency_ms,energy_mj\n0,{A0},10.5,16.1\n1,{A1},1.8,2.6\n")
    return path


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


# ---- measure ----------------------------------------------------------------------------------


def test_measure_caches_and_force_remeasures(capsys, model_file, tmp_path) -> None:
    run = str(tmp_path / "run")
    first = run_json(capsys, "measure", str(model_file), "--cache", run, *FAST)["measurement"]
    assert first["source"] == "measured" and not first["cached"] and first["latency_ms"] > 0
    assert first["latency"]["threads"] == 1 and first["input_shape"] == [1, 3, 16, 16]
    again = run_json(capsys, "measure", str(model_file), "--cache", run, *FAST)["measurement"]
    assert again["cached"] and again["latency"] == first["latency"]
    forced = run_json(capsys, "measure", str(model_file), "--cache", run, "--force", *FAST)["measurement"]
    assert not forced["cached"]
    other = run_json(capsys, "measure", str(model_file), "--cache", run, "--threads", "2", *FAST)[
        "measurement"
    ]
    assert not other["cached"] and other["threads"] == 2


def test_measure_human_output_names_the_conditions(capsys, model_file) -> None:
    assert main(["measure", str(model_file), "--no-energy", *FAST]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "1 thread" in out and "input 1x3x16x16" in out and "median" in out
    assert "energy" not in out


def test_measure_repeat_reports_stability(capsys, model_file) -> None:
    payload = run_json(capsys, "measure", str(model_file), "--repeat", "2", "--no-energy", *FAST)
    stability = payload["stability"]
    assert len(payload["repeats"]) == 2 and len(stability["medians_ms"]) == 2
    spread = max(stability["medians_ms"]) - min(stability["medians_ms"])
    assert stability["median_spread_ms"] == pytest.approx(spread)
    assert stability["spread_below_iqr"] == (spread < min(stability["iqrs_ms"]))


def test_measure_on_a_table_device(capsys, table_csv) -> None:
    m = run_json(capsys, "measure", A1, "--device", f"table:{table_csv}")["measurement"]
    assert (m["latency_ms"], m["energy_mj"], m["source"]) == (1.8, 2.6, "table")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["{model}", "--device", "table:{table}"], "answers only for nb201 architectures"),
        (["nope.onnx"], "no such file"),
        (["{model}", "--threads", "zero"], "--threads"),
        (["{model}", "--device", "gpu0"], "unknown device"),
        (["{model}", "--input", "1x3"], "rank"),
        (["{model}", "--token-file", "{table}"], "for remote devices"),
        (["{model}", "--device", "table:{table}x"], "no such file"),
        (
            ["{model}", "--device", "remote:http://127.0.0.1:{port}", "--token-file", "{token}"],
            "connection refused",
        ),
        (
            ["{model}", "--device", "remote:http://127.0.0.1:{port}", "--token-file", "{missing}"],
            "agent token --out",
        ),
        ([A0, "--device", "table:{table}", "--cache", "{tmp}"], "nothing to cache"),
    ],
)
def test_measure_bad_input_is_one_line(capsys, model_file, table_csv, tmp_path, argv, match) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a port with no listener
        values = {
            "model": model_file, "table": table_csv, "port": s.getsockname()[1], "token": token,
            "missing": tmp_path / "missing", "tmp": tmp_path / "run",
        }  # fmt: skip
        err = one_line_error(capsys, "measure", *(a.format(**values) for a in argv), *FAST)
    assert match in err and err.startswith("slimforge measure: error:")


@pytest.mark.slow
def test_measure_through_an_agent(capsys, model_file, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    with AgentServer(TOKEN) as agent:
        m = run_json(
            capsys,
            "measure",
            str(model_file),
            "--device",
            f"remote:{agent.url}",
            "--token-file",
            str(token),
            *FAST,
        )
        info = run_json(capsys, "agent", "info", f"remote:{agent.url}", "--token-file", str(token))
        token.write_text("wrong-token")
        err = one_line_error(
            capsys, "measure", str(model_file), "--device", f"remote:{agent.url}", "--token-file", str(token)
        )
    assert m["measurement"]["device_info"]["kind"] == "agent" and m["measurement"]["latency_ms"] > 0
    assert info["device"]["runtime"] == "onnxruntime" and "max_upload_bytes" in info["limits"]
    assert "refused the token" in err


# ---- agent ------------------------------------------------------------------------------------


def test_agent_token_writes_a_file_once(capsys, tmp_path) -> None:
    path = tmp_path / "agent.token"
    assert main(["agent", "token", "--out", str(path)]) == 0
    assert len(path.read_text().strip()) >= 32
    assert "already exists" in one_line_error(capsys, "agent", "token", "--out", str(path))


def test_agent_needs_an_action(capsys) -> None:
    assert "serve | token | info" in one_line_error(capsys, "agent")


def test_agent_serve_refuses_a_missing_token_file(capsys, tmp_path) -> None:
    err = one_line_error(capsys, "agent", "serve", "--port", "0", "--token-file", str(tmp_path / "absent"))
    assert "no such file" in err


# ---- lut --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lut_build_predict_and_eval(capsys, tmp_path, progress_lines) -> None:
    tiny = [
        "--space",
        "mbv2",
        "--resolution",
        "32",
        "--width",
        "0.35",
        "--space-arg",
        "stage_depths=[1,1,1,1,1,1]",
    ]
    out = tmp_path / "lut.csv"
    argv = ["lut", "build", *tiny, "--device", "local-torch", "--time-cap", "0.05", "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    # progress also when stderr is not a terminal (here: captured): plain lines, at interval 0 one per part
    assert "LUT mbv2: 100% (9/9 part)" in captured.err and "Traceback" not in captured.err
    assert summary["table"] == str(out) and out.exists() and summary["space_options"]["resolution"] == 32
    genome = "k3e3-k3e6-k5e3-k5e6-k7e3-k7e6"
    pred = run_json(capsys, "lut", "predict", "--table", str(out), genome, "0,0,0,0,0,0")["predictions"]
    assert pred[0]["arch"] == genome and pred[1]["genome"] == [0] * 6
    assert pred[0]["latency_ms"] > pred[1]["latency_ms"] > 0  # bigger kernels and expansions cost more
    result = run_json(
        capsys,
        "lut",
        "eval",
        "--table",
        str(out),
        "--device",
        "local-torch",
        "--sample",
        "2",
        "--time-cap",
        "0.05",
    )
    assert (
        result["num_models"] == 2
        and len(result["rows"]) == 2
        and 0 <= result["lut"]["within_10pct_share"] <= 1
    )


def test_lut_bad_input_is_one_line(capsys, tmp_path) -> None:
    assert "slimforge lut build" in one_line_error(
        capsys, "lut", "predict", "--table", str(tmp_path / "x.csv"), "0"
    )
    err = one_line_error(
        capsys, "lut", "build", "--space", "nb201", "--input", "1x3x32x32", "--out", str(tmp_path / "t.csv")
    )
    assert "layer-wise space" in err
    assert "KEY=VALUE" in one_line_error(
        capsys, "lut", "build", "--space-arg", "oops", "--out", str(tmp_path / "t.csv")
    )
    assert "build | predict | eval" in one_line_error(capsys, "lut")
    for given in ((), ("--calibrate", "2")):  # refused before any layer is measured
        err = one_line_error(capsys, "lut", "build", "--calibration", "affine", *given, "--out", str(tmp_path / "t.csv"))
        assert "needs --calibrate N with N >= 3" in err
    assert not (tmp_path / "t.csv").exists()
