"""slimforge run: config validation, preflight, a whole run on NAS-Bench-201 tables, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slimforge.cli import main
from slimforge.io import RunStore
from slimforge.runs import ConfigError, RunConfig, load_config, run_pipeline

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"
ACC = DATA / "accuracy_cifar10.csv"
PI5 = DATA / "device_pi5_onnxruntime.csv"
LITE = DATA / "device_pi5_litert.csv"
needs_tables = pytest.mark.skipif(not ACC.is_file(), reason="../shared/data/nb201 (reference tables) is absent")


def _table_config(**overrides):
    """A run that needs no training: accuracy and latency from the NAS-Bench-201 tables."""
    config = {
        "data": "digits",
        "space": {"name": "nb201"},
        "accuracy": {"source": f"table:{ACC}"},
        "devices": [
            {"name": "ort", "spec": f"table:{PI5}", "cost": "table"},
            {"name": "litert", "spec": f"table:{LITE}", "cost": "table"},
        ],
        "search": {"budget": 60, "objectives": ["error", "latency_ms"], "constraints": ["latency_ms <= 8"]},
        "retrain": {"mode": "scratch", "epochs": 0, "reference": []},
        "compress": {"recipe": "none"},
        "report_png": False,
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def _write(tmp_path, config, name="run.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


# ----------------------------------------------------------------------------- config


def test_defaults_fill_every_setting():
    config = RunConfig.from_dict({})
    assert config.space.name == "mbv2" and config.devices[0].spec == "local-cpu"
    assert RunConfig.from_dict(config.to_dict()) == config  # the echoed config reads back the same


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"serch": {}}, "unknown key 'serch'; did you mean search"),
        ({"search": {"budget": "many"}}, "search.budget must be an integer, got 'many'"),
        ({"select": {"rule": "kne"}}, "select.rule must be one of knee, best, within, list, got 'kne'"),
        ({"devices": [{"cost": "guess"}]}, "devices[0].cost must be one of lut, measure, table"),
        ({"retrain": {"epochs": -1}}, "retrain.epochs must be >= 0"),
        ({"devices": [{"name": "a"}, {"name": "a"}]}, "devices[1].name 'a' is used twice"),
        ({"accuracy": {"source": "table:x.csv"}}, "retrain.mode finetune starts from the supernet"),
    ],
)
def test_bad_config_names_key_value_and_choices(data, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(data)
    assert message in str(info.value)


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML at line 1"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_preflight_names_the_bad_registry_value(tmp_path, capsys):
    path = _write(tmp_path, {"search": {"algorithm": "nsga3"}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "search.algorithm" in err and "nsga3" in err and "nsga2" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_unreachable_device_stops_the_run_before_training(tmp_path, capsys):
    config = {"devices": [{"name": "pi", "spec": "remote:http://127.0.0.1:9", "cost": "measure"}]}
    path = _write(tmp_path, config)
    start = time.perf_counter()
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "devices[0] (pi).spec" in err and "127.0.0.1:9" in err
    assert not (tmp_path / "out").exists() and time.perf_counter() - start < 30


# ----------------------------------------------------------------------------- whole runs


@pytest.mark.slow
@needs_tables
def test_whole_run_on_two_table_devices(tmp_path):
    config = RunConfig.from_dict(_table_config())
    out = tmp_path / "run"
    result = run_pipeline(config, out, progress=False, log=lambda _: None)
    assert set(result.stages.values()) == {"done"}
    assert list(result.stages) == [
        "supernet", "calibrate", "search:ort", "search:litert", "select", "retrain", "reference", "compress",
        "export", "measure", "report",
    ]
    # one search per device, each with its own store and front
    for device in ("ort", "litert"):
        data = json.loads((out / "search" / device / "result.json").read_text())
        assert data["num_evaluations"] == 60 and data["front"]
        assert all(e["constraints"]["latency_ms <= 8"] <= 8 for e in data["front"])
    with RunStore(out / "store.sqlite", create=False) as store:
        chosen = store.get_stage("select").outputs["chosen"]
        measured = store.get_stage("measure").outputs["devices"]
    assert {c["device"] for c in chosen} == {"ort", "litert"}
    for device in measured:  # the table device answers for the chosen architecture itself
        assert {f["form"] for f in device["files"]} == {"architecture"} and "table" in device["conditions"]
    assert (out / "models" / chosen[0]["name"] / "model.onnx").is_file()
    assert yaml.safe_load((out / "config.yaml").read_text()) == config.to_dict()  # settings echoed
    html = (out / "report.html").read_text()
    assert "Pareto front on ort" in html and "Pareto front on litert" in html
    assert result.summary.fronts.keys() == {"ort", "litert"}
    # a second call finds everything done and redoes nothing
    again = run_pipeline(config, out, progress=False, log=lambda _: None)
    assert set(again.resumed) == set(result.stages)


@pytest.mark.slow
@needs_tables
def test_changed_settings_rerun_only_downstream_stages_and_another_format_is_refused(tmp_path):
    out = tmp_path / "run"
    config = RunConfig.from_dict(_table_config())
    run_pipeline(config, out, progress=False, log=lambda _: None)
    logged = []
    other = RunConfig.from_dict(_table_config(select={"rule": "best"}))
    result = run_pipeline(other, out, progress=False, log=logged.append)
    assert {"supernet", "calibrate", "search:ort", "search:litert", "reference"} <= set(result.resumed)
    assert result.rerun[:2] == ("select", "retrain") and "report" in result.rerun
    assert any("select.rule: 'knee' -> 'best'" in line for line in logged)
    assert yaml.safe_load((out / "config.yaml").read_text())["select"]["rule"] == "best"
    with RunStore(out / "store.sqlite", create=False) as store:
        meta = store.get_meta("run")
        store.set_meta("run", {**meta, "format_version": 99, "slimforge": "9.0"})
    with pytest.raises(ConfigError, match="run format 99"):
        run_pipeline(config, out, progress=False, log=lambda _: None)


@pytest.mark.slow
@needs_tables
def test_check_validates_and_plans_without_writing(tmp_path, capsys):
    path = _write(tmp_path, _table_config())
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--check", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["stages"]
    assert set(plan.values()) == {"run"} and not out.exists()
    run_pipeline(load_config(path), out, progress=False, log=lambda _: None, stop_after="select")
    assert main(["run", str(path), "--out", str(out), "--check", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["stages"]
    assert plan["search:ort"] == "reuse" and plan["select"] == "reuse" and plan["retrain"] == "run"


@pytest.mark.slow
@needs_tables
def test_piped_stderr_gets_plain_progress_lines(tmp_path):
    path = _write(tmp_path, _table_config(search={"budget": 40}))
    env = {**os.environ, "SLIMFORGE_PROGRESS_INTERVAL_S": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from slimforge.cli import main; sys.exit(main())",
         "run", str(path), "--out", str(tmp_path / "run"), "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "% (" in line]
    assert any("eval) " in line and "elapsed" in line for line in lines)
    assert "\r" not in proc.stderr


@pytest.mark.parametrize(
    ("config", "argv", "message"),
    [
        ({"retrain": {"epoch": 3}}, [], "unknown key 'retrain.epoch'; did you mean epochs"),
        ({"compress": {"recipe": "prune:l1:0.3:round_to=0"}}, [], "round_to=0 must be between 1 and 1024"),
        ({"compress": {"gate": "speed"}}, [], "compress.gate must be one of latency, size, none"),
        ({}, ["--threads", "0"], "--threads must be an integer from 1"),
    ],
)
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, config, argv, message):
    path = _write(tmp_path, config)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not (tmp_path / "out").exists()


@needs_tables
@pytest.mark.slow
def test_kill_during_search_then_resume_reevaluates_nothing(tmp_path):
    # Each candidate is timed on this machine (a short cap), so the search is slow enough to kill.
    config = _table_config(search={"budget": 24, "constraints": []})
    config["devices"] = [{"name": "cpu", "spec": "local-cpu", "cost": "measure", "time_cap_s": 0.05}]
    path = _write(tmp_path, config)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from slimforge.cli import main; sys.exit(main())",
         "run", str(path), "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    search_store = out / "search" / "cpu" / "store.sqlite"
    deadline = time.monotonic() + 120
    stored = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if search_store.is_file():
                with RunStore(search_store, create=False) as store:
                    stored = len(store)
                if stored >= 4:
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert 4 <= stored < 24, "the search must be killed part-way"
    with RunStore(out / "store.sqlite", create=False) as store:
        assert store.get_stage("search:cpu").status == "running"
        assert store.get_stage("select") is None
    from slimforge.report import render_report

    html = render_report(out, png=False).html_path.read_text(encoding="utf-8")
    assert "status-interrupted" in html and "run the same command again to resume" in html
    with RunStore(search_store, create=False) as store:
        before = {r.key: r.seq for r in store.evaluations()}
    result = run_pipeline(RunConfig.from_dict(config), out, progress=False, log=lambda _: None)
    assert set(result.stages.values()) == {"done"} and "supernet" in result.resumed
    data = json.loads((out / "search" / "cpu" / "result.json").read_text())
    assert data["num_evaluations"] == 24 and data["num_resumed"] >= len(before)
    with RunStore(search_store, create=False) as store:
        after = {r.key: r.seq for r in store.evaluations()}
    assert all(after[k] == seq for k, seq in before.items())  # stored rows kept, none evaluated again
    assert len(after) == 24


TINY = {
    "data": "digits",
    "space": {"name": "mbv2", "options": {"width": 0.35, "resolution": 32, "stage_depths": [1, 1, 1, 1, 1, 1]}},
    "supernet": {"epochs": 1, "lr": 0.05},
    "accuracy": {"bn_images": 32, "eval_images": 64, "calibration": {"size": 5, "epochs": 1}},
    "devices": [
        {"name": "cpu", "spec": "local-cpu", "cost": "lut", "time_cap_s": 0.02},
        {"name": "cpu2", "spec": "local-cpu", "cost": "lut", "threads": 2, "time_cap_s": 0.02},
    ],
    "search": {"budget": 8, "settings": {"pop_size": 4}},
    "retrain": {"epochs": 1, "reference": ["mobilenet_v2"], "reference_widths": [0.35], "reference_epochs": 1},
    "compress": {
        "auto": "prune",
        "budget": "macs=0.7",
        "search_budget": 4,
        "recipe": "quantize:int8",
        "finetune_epochs": 0,
        "calibration_images": 16,
        "gate": "size",
    },
    "measure": {"time_cap_s": 0.05, "rounds": 2},
    "threads": 1,
    "report_png": False,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The demo's path at toy scale: supernet, LUT on local-cpu, NSGA-II, finetune with in-place
    distillation, a searched pruning policy, INT8 under the size gate, export, measure, report."""
    config = RunConfig.from_dict(TINY)
    out = tmp_path_factory.mktemp("tiny") / "run"
    result = run_pipeline(config, out, progress=False, log=lambda _: None)
    return config, out, result


@pytest.mark.slow
def test_tiny_mbv2_run_on_this_cpu(tiny_run):
    config, out, result = tiny_run
    assert set(result.stages.values()) == {"done"}
    luts = sorted((out / "cache").glob("lut-*.csv"))
    assert [p.name.split("-")[1] for p in luts] == ["cpu", "cpu2"]
    from slimforge.hardware.lut import read_lut

    assert read_lut(luts[0]).header["calibration_networks"] == "5"
    # one supernet, two searches: accuracies are shared, so the second device re-used the first's
    (accuracy_store,) = (out / "search").glob("accuracy-*.sqlite")
    with RunStore(accuracy_store, create=False) as store:
        assert len(store) < sum(result.summary.evaluations.values())
    chosen = result.summary.chosen[0]
    assert chosen.estimated_accuracy_pct is not None and chosen.retrained_accuracy_pct is not None
    with RunStore(out / "store.sqlite", create=False) as store:
        audit = store.get_stage("calibrate").outputs["audit"]
    assert len(audit["archs"]) == 5 and len(list((out / "calibration").glob("arch*.json"))) == 5
    assert {e["name"] for e in audit["estimators"]} == {"supernet", "zero_cost", "num_params", "blend"}
    assert chosen.estimator.startswith(audit["chosen"]) and "audited" in chosen.estimator
    assert (audit["warning"] is not None) == any("ranks poorly" in w for w in result.summary.warnings)
    assert chosen.latency.deployed_ms > 0 and chosen.latency.fp32_ms > 0 and chosen.latency.deployed_vs_fp32 > 0
    assert chosen.precision == "int8" and chosen.deployed_bytes < chosen.fp32_bytes  # INT8 weights (size gate)
    assert chosen.reference.name == "ref-mobilenet_v2-0.35" and chosen.reference.form in ("fp32", "int8")
    assert chosen.speedup_vs_reference > 0
    slower = chosen.latency.deployed_vs_fp32 > 1 + config.measure.tolerance
    assert slower == any("SLOWER than its own FP32 export" in r for r in chosen.regressions)
    with RunStore(out / "store.sqlite", create=False) as store:
        retrain = store.get_stage("retrain").outputs["models"][0]
        compressed = store.get_stage("compress").outputs["models"][0]
        exported = store.get_stage("export").outputs["models"][0]
        references = store.get_stage("export").outputs["references"]
    assert retrain["mode"] == "finetune" and retrain["distilled"]
    assert references[0]["int8_onnx"] and references[0]["fp32_onnx"]  # the references deploy INT8 too
    # the searched pruning policy met its budget, and the recipe (INT8) ran on the pruned model
    record = json.loads((out / compressed["auto"]["result"]).read_text())
    assert record["budget_met"] and record["rows"][1]["macs"] <= 0.7 * record["rows"][0]["macs"] + 1
    assert compressed["source"].endswith("auto/searched") and compressed["report"]
    assert compressed["gate_device"] == "local-cpu"
    assert (out / exported["pytorch"] / "model.json").is_file()
    from slimforge.report import render_report

    html = render_report(out, png=False).html_path.read_text(encoding="utf-8")
    assert "searched per-layer prune policy under macs=0.7" in html
    assert "<h2>Estimator audit</h2>" in html and f"The search used <strong>{audit['chosen']}" in html
    assert html.index('id="sec-headline"') < html.index('id="sec-stages"')  # the report opens with the summary
    assert "deployed vs deployed" in html and 'class="status status-running"' not in html


@pytest.mark.slow
def test_every_exported_directory_profiles_and_measures(tiny_run, capsys):
    _, out, result = tiny_run
    name = result.summary.chosen[0].name
    dirs = [out / "models" / name / sub for sub in ("trained", "pytorch", "compressed/model", "auto/searched")]
    dirs += [out / "models" / name, *sorted((out / "references").glob("*/trained"))]
    for d in dirs:
        assert main(["profile", str(d), "--no-latency", "--json"]) == 0, d
        profile = json.loads(capsys.readouterr().out)
        assert profile["input_shape"][-2:] == [32, 32], d  # the model's own shape, not 224x224
        assert main(["measure", str(d), "--time-cap", "0.05", "--json"]) == 0, d
        assert json.loads(capsys.readouterr().out)["measurement"]["input_shape"][-1] == 32


@pytest.mark.slow
def test_changed_retrain_epochs_reuses_supernet_and_searches(tiny_run, tmp_path):
    import shutil

    _, out, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    checkpoint = copy / "supernet" / "checkpoint.pt"
    stores = sorted((copy / "search").glob("*/store.sqlite"))
    stamps = [p.stat().st_mtime_ns for p in (checkpoint, *stores)]
    changed = RunConfig.from_dict({**TINY, "retrain": {**TINY["retrain"], "epochs": 2}})
    result = run_pipeline(changed, copy, progress=False, log=lambda _: None, stop_after="retrain")
    assert {"supernet", "calibrate", "search:cpu", "search:cpu2", "select"} <= set(result.resumed)
    assert result.rerun == ("retrain",)
    assert [p.stat().st_mtime_ns for p in (checkpoint, *stores)] == stamps  # not trained or searched again
    with RunStore(copy / "store.sqlite", create=False) as store:
        assert store.get_stage("retrain").outputs["models"][0]["epochs"] == 2
        assert store.get_stage("compress").status == "done"  # stale until the run goes on past retrain
    again = run_pipeline(changed, copy, progress=False, log=lambda _: None, stop_after="compress")
    assert "retrain" in again.resumed and again.rerun == ("compress",)


def test_auto_compression_and_export_formats_are_checked():
    with pytest.raises(ConfigError, match="compress.auto and compress.budget go together"):
        RunConfig.from_dict({"compress": {"auto": "prune"}})
    with pytest.raises(ConfigError, match="compress.auto must be one of prune, bits"):
        RunConfig.from_dict({"compress": {"auto": "lowrank", "budget": "macs=0.5"}})
    with pytest.raises(ConfigError, match="export.formats\\[1\\] must be one of onnx, pytorch"):
        RunConfig.from_dict({"export": {"formats": ["onnx", "coreml"]}})


def test_preflight_checks_the_automated_compression_budget(tmp_path, capsys):
    path = _write(tmp_path, {"compress": {"auto": "prune", "budget": "flops=0.5"}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "compress.budget" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.slow
@needs_tables
def test_disk_full_while_writing_leaves_a_store_that_resumes(tmp_path, monkeypatch):
    import errno

    import slimforge.io as model_io
    from slimforge.runs._context import StageError

    config = RunConfig.from_dict(_table_config(search={"budget": 20}))
    out = tmp_path / "run"
    real_save = model_io.save_model

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_io, "save_model", full_disk)
    with pytest.raises(StageError, match="stage retrain could not write its files.*No space left.*run the same command again"):
        run_pipeline(config, out, progress=False, log=lambda _: None)
    with RunStore(out / "store.sqlite", create=False) as store:
        status = {s.name: s.status for s in store.stages()}
    assert status["search:ort"] == "done" and status["select"] == "done" and status["retrain"] == "failed"
    monkeypatch.setattr(model_io, "save_model", real_save)
    result = run_pipeline(config, out, progress=False, log=lambda _: None)
    assert set(result.stages.values()) == {"done"} and "search:ort" in result.resumed


@needs_tables
@pytest.mark.slow
def test_further_export_formats_and_runtimes_and_mlflow(tmp_path, capsys):
    import importlib.util

    formats = ["onnx", "pytorch", "torchscript"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    config = _table_config(
        search={"budget": 20},
        export={"formats": formats},
        measure={"runtimes": ["local-torch", "local-cpu"], "time_cap_s": 0.2, "rounds": 2},
    )
    path = _write(tmp_path, config)
    out = tmp_path / "run"
    argv = ["run", str(path), "--out", str(out), "--json", "--threads", "1"]
    mlflow = importlib.util.find_spec("mlflow") is not None
    if mlflow:
        argv += ["--mlflow", (tmp_path / "mlruns").as_uri()]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    with RunStore(out / "store.sqlite", create=False) as store:
        exported = store.get_stage("export").outputs["models"]
        runtimes = store.get_stage("measure").outputs["runtimes"]
    for m in exported:
        done = {f["format"]: f for f in m["formats"]}
        assert set(done) == set(formats) - {"onnx", "pytorch"}
        for f in done.values():  # FP32 conversions agree with the PyTorch model on every test image
            assert f["path"] and (out / f["path"]).is_file() and f["top1_agreement_pct"] == 100.0
    assert {r["device"] for r in runtimes} == {"local-torch", "local-cpu"}
    assert all(r["latency_ms"] > 0 for r in runtimes)
    html = (out / "report.html").read_text()
    assert "The deployed models on other runtimes" in html and "<h3>Exports</h3>" in html
    if mlflow:
        assert result["mlflow"]["run_id"] and (tmp_path / "mlruns").is_dir()


def test_bad_runtime_and_format_names_are_one_line(tmp_path, capsys):
    path = _write(tmp_path, {"measure": {"runtimes": ["local-gpu"]}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "measure.runtimes[0] 'local-gpu' is not a local runtime device" in capsys.readouterr().err
    path = _write(tmp_path, {"export": {"formats": ["onnx", "coreml"]}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "export.formats[1] must be one of onnx, pytorch, tflite" in capsys.readouterr().err


def test_the_config_reference_matches_the_schema(capsys):
    from slimforge.runs.config import explain_config

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text(encoding="utf-8") == explain_config(), "regenerate: slimforge demo --print-config --explain > docs/config.md"
    text = explain_config()
    for key in ("compress.gate", "accuracy.calibration.size", "measure.runtimes", "retrain.teacher", "devices[].cost"):
        assert f"`{key}`" in text, key
    assert main(["demo", "--print-config", "--explain"]) == 0 and capsys.readouterr().out == text
