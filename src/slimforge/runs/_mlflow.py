"""Experiment tracking: a run directory logged to MLflow (optional extra ``slimforge[mlflow]``).

:func:`log_run` reads a finished or unfinished run directory and logs, as one MLflow run:

- the config (``config.yaml``) as parameters (nested keys joined with dots) and as an artifact;
- every stage's status as a tag and its numeric outputs as metrics (``stage/<stage>/<key>``),
  and the summary's numbers (``summary/...``), from the run store;
- each search's Pareto front as a table artifact (``pareto/<device>.csv`` and MLflow's table JSON
  ``pareto/<device>.json``, from ``search/<device>/result.json``);
- the report (``report.html``) and the exported models (``models/<name>/model.onnx``).

The default store is a local ``file:`` folder (``mlruns`` beside the run directory). MLflow 3.7+
keeps file stores in maintenance mode and refuses them unless ``MLFLOW_ALLOW_FILE_STORE`` is set:
:func:`log_run` sets it for the duration of the call only. A ``sqlite:///`` or ``http://`` URI
works as well where MLflow supports it (the full ``mlflow`` package, not ``mlflow-skinny``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.io import CONFIG_FILE, REPORT_FILE, STORE_FILE, JsonRecord, RunStore, StoreError, load_yaml

__all__ = ["MlflowLog", "log_run"]

_BATCH = 100  # MLflow's limit of parameters per batch call
_MAX_PARAM_CHARS = 500


@dataclass(frozen=True)
class MlflowLog(JsonRecord):
    """Where a run directory was logged and what went in."""

    uri: str
    experiment_id: str
    run_id: str
    run_name: str
    finished: bool
    num_params: int
    num_metrics: int
    artifacts: tuple[str, ...]


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    # MLflow >= 3.7 raises on file stores unless this is set; scoped to the call, restored after.
    if not uri.startswith("file:"):
        yield
        return
    previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = previous


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Leaves of nested dicts and lists as ``(dotted/slashed key, value)``; list items of dicts with a
    ``name`` are keyed by it, others by their position."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            yield from _flatten(item, f"{prefix}/{name if isinstance(name, str) else i}")
    else:
        yield prefix, value


def _metric_key(key: str) -> str:
    # MLflow keys: alphanumerics, underscores, dashes, periods, spaces and slashes.
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)


def _numbers(value: Any, prefix: str) -> dict[str, float]:
    return {
        _metric_key(k): float(v)
        for k, v in _flatten(value, prefix)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _front_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    front = result.get("front") or []
    objectives = list(result.get("objectives") or [])
    metrics = sorted({k for row in front for k in (row.get("metrics") or {}) if k not in objectives})
    columns = ["arch", "genome", *objectives, *metrics]
    rows = []
    for row in front:
        values = {**(row.get("metrics") or {}), **(row.get("objectives") or {})}
        rows.append([row.get("arch"), json.dumps(row.get("genome")), *(values.get(c) for c in columns[2:])])
    return columns, rows


def log_run(
    run_dir: str | os.PathLike,
    uri: str | None = None,
    *,
    experiment: str = "slimforge",
    run_name: str | None = None,
) -> MlflowLog:
    """Log a run directory (finished or not) to MLflow; returns where it went.

    Args:
        run_dir: a directory written by ``slimforge run`` (it holds ``store.sqlite``).
        uri: the tracking URI; ``file:<run_dir's parent>/mlruns`` when None.
        experiment: the MLflow experiment (created if absent).
        run_name: the MLflow run's name; the run directory's name when None.

    Raises:
        InvalidInputError: ``run_dir`` is not a run directory.
        MissingDependencyError: MLflow is not installed (``pip install 'slimforge[mlflow]'``).
    """
    from slimforge.hardware.runtimes import require

    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).is_file():
        raise InvalidInputError(
            f"{run_dir} is not a run directory (no {STORE_FILE}); give one written by slimforge run"
        )
    require("mlflow-skinny")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = uri if uri is not None else f"file:{(run_dir.resolve().parent / 'mlruns')}"
    try:
        store = RunStore(run_dir / STORE_FILE, create=False)
    except StoreError as exc:
        raise InvalidInputError(f"{run_dir}: {exc}") from None
    try:
        stages = store.stages()
        summary = store.get_meta("summary")
    finally:
        store.close()
    config_path = run_dir / CONFIG_FILE
    config = (
        load_yaml(config_path.read_text(encoding="utf-8"), source=str(config_path))
        if config_path.is_file()
        else {}
    )
    params = {
        k.replace("/", "."): (json.dumps(v) if not isinstance(v, str) else v)[:_MAX_PARAM_CHARS]
        for k, v in _flatten(config or {}, "")
    }
    metrics: dict[str, float] = {}
    for stage in stages:
        metrics.update(_numbers(stage.outputs or {}, f"stage/{stage.name}"))
    if isinstance(summary, dict):
        metrics.update(_numbers(summary, "summary"))
    finished = bool(stages) and all(s.status == "done" for s in stages) and summary is not None
    tags = {
        "slimforge.run_dir": str(run_dir.resolve()),
        "slimforge.state": "finished" if finished else "unfinished",
        **{_metric_key(f"slimforge.stage.{s.name}"): s.status for s in stages},
    }
    now = int(time.time() * 1000)
    artifacts: list[str] = []
    with _file_store_allowed(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name=run_name or run_dir.resolve().name, tags=tags)
        run_id = run.info.run_id
        try:
            items = list(params.items())
            for i in range(0, len(items), _BATCH):
                client.log_batch(run_id, params=[Param(k, v) for k, v in items[i : i + _BATCH]])
            pairs = list(metrics.items())
            for i in range(0, len(pairs), _BATCH * 10):
                client.log_batch(
                    run_id, metrics=[Metric(k, v, now, 0) for k, v in pairs[i : i + _BATCH * 10]]
                )
            if config_path.is_file():
                client.log_artifact(run_id, str(config_path))
                artifacts.append(CONFIG_FILE)
            for result_path in sorted(run_dir.glob("search/*/result.json")):
                device = result_path.parent.name
                try:
                    result = json.loads(result_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # a search still writing or broken: the rest is still logged
                columns, rows = _front_table(result)
                text = io.StringIO()
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows(rows)
                client.log_text(run_id, text.getvalue(), f"pareto/{device}.csv")
                client.log_text(
                    run_id, json.dumps({"columns": columns, "data": rows}), f"pareto/{device}.json"
                )
                artifacts += [f"pareto/{device}.csv", f"pareto/{device}.json"]
            report = run_dir / REPORT_FILE
            if report.is_file():
                client.log_artifact(run_id, str(report))
                artifacts.append(REPORT_FILE)
            for model in sorted(run_dir.glob("models/*/model.onnx")):
                client.log_artifact(run_id, str(model), f"models/{model.parent.name}")
                artifacts.append(f"models/{model.parent.name}/model.onnx")
            client.set_terminated(run_id, "FINISHED" if finished else "KILLED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
    return MlflowLog(
        uri=uri,
        experiment_id=str(experiment_id),
        run_id=run_id,
        run_name=run.info.run_name,
        finished=finished,
        num_params=len(params),
        num_metrics=len(metrics),
        artifacts=tuple(artifacts),
    )
