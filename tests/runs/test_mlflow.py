"""log_run: a run directory's config, stage metrics, Pareto front, report and models in a temporary MLflow file store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.hardware.runtimes import OPTIONAL, OptionalPackage, available
from slimforge.io import RunStore

pytestmark = pytest.mark.skipif(
    not available("mlflow-skinny"), reason="mlflow is not installed (slimforge[mlflow])"
)

FRONT = [
    {
        "arch": "k3e3-id",
        "genome": [0, 6],
        "objectives": {"error": 40.0, "latency_ms": 0.2},
        "metrics": {"accuracy": 60.0},
    },
    {
        "arch": "k5e6-k3e3",
        "genome": [3, 0],
        "objectives": {"error": 35.0, "latency_ms": 0.4},
        "metrics": {"accuracy": 65.0},
    },
]


def make_run(root: Path, *, finished: bool) -> Path:
    run = root / "run"
    (run / "search" / "cpu").mkdir(parents=True)
    (run / "models" / "cpu-knee").mkdir(parents=True)
    (run / "config.yaml").write_text("data: digits\nsearch:\n  budget: 150\n  algorithm: nsga2\n")
    (run / "search" / "cpu" / "result.json").write_text(
        json.dumps({"objectives": ["error", "latency_ms"], "front": FRONT})
    )
    (run / "models" / "cpu-knee" / "model.onnx").write_bytes(b"onnx bytes")
    with RunStore(run / "store.sqlite") as store:
        store.set_stage("search:cpu", "done", {"evaluations": 150, "front": 2, "spec": "local-cpu"})
        store.set_stage(
            "export", "done" if finished else "running", {"models": [{"name": "cpu-knee", "bytes": 10}]}
        )
        if finished:
            (run / "report.html").write_text("<html></html>")
            store.set_meta("summary", {"chosen": [{"name": "cpu-knee", "deployed_accuracy_pct": 64.5}]})
    return run


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)  # the callers allow the file store (monkeypatch.setenv)


@pytest.mark.slow
def test_a_finished_run_is_logged_whole(tmp_path, monkeypatch) -> None:
    from slimforge.runs._mlflow import log_run

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    run = make_run(tmp_path, finished=True)
    uri = f"file:{tmp_path / 'mlruns'}"
    logged = log_run(run, uri)
    assert logged.finished and logged.uri == uri
    import os

    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # scoped to the call
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    got = client(uri).get_run(logged.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "run"
    assert got.data.params["search.budget"] == "150" and got.data.params["data"] == "digits"
    assert got.data.metrics["stage/search_cpu/evaluations"] == 150
    assert got.data.metrics["stage/export/models/cpu-knee/bytes"] == 10
    assert got.data.metrics["summary/chosen/cpu-knee/deployed_accuracy_pct"] == 64.5
    assert got.data.tags["slimforge.state"] == "finished"
    artifacts = client(uri).list_artifacts(logged.run_id, "pareto")
    assert sorted(Path(a.path).name for a in artifacts) == ["cpu.csv", "cpu.json"]
    local = Path(client(uri).download_artifacts(logged.run_id, "pareto/cpu.csv", str(tmp_path / "dl")))
    lines = local.read_text().splitlines()
    assert lines[0] == "arch,genome,error,latency_ms,accuracy" and lines[1].startswith("k3e3-id,")
    assert set(logged.artifacts) >= {"config.yaml", "report.html", "models/cpu-knee/model.onnx"}


@pytest.mark.slow
def test_an_unfinished_run_is_logged_as_such(tmp_path, monkeypatch) -> None:
    from slimforge.runs._mlflow import log_run

    run = make_run(tmp_path, finished=False)
    logged = log_run(run)  # the default: a file store beside the run directory
    assert not logged.finished and logged.uri == f"file:{(tmp_path / 'mlruns').resolve()}"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    got = client(logged.uri).get_run(logged.run_id)
    assert got.info.status == "KILLED" and got.data.tags["slimforge.stage.export"] == "running"
    assert "report.html" not in logged.artifacts


def test_not_a_run_directory_is_one_line(tmp_path) -> None:
    from slimforge.runs._mlflow import log_run

    with pytest.raises(InvalidInputError, match="is not a run directory"):
        log_run(tmp_path)


def test_without_mlflow_the_error_says_what_to_install(tmp_path, monkeypatch) -> None:
    from slimforge.runs._mlflow import log_run

    monkeypatch.setitem(
        OPTIONAL,
        "mlflow-skinny",
        OptionalPackage("slimforge_no_such_module", "mlflow-skinny", "mlflow", "MLflow"),
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'slimforge\[mlflow\]'"):
        log_run(make_run(tmp_path, finished=True))
