"""Run directories: the SQLite run store, saved models, the config and stages of ``slimforge run``.

>>> from slimforge.runs import load_config, run_pipeline
>>> result = run_pipeline(load_config("design.yaml"), "runs/design")      # doctest: +SKIP
>>> print(result.summary.format())                                       # doctest: +SKIP
"""

from __future__ import annotations

from slimforge.runs._mlflow import MlflowLog, log_run
from slimforge.runs._parallel import RunAborted
from slimforge.runs.config import ConfigError, RunConfig, dump_config, load_config
from slimforge.runs.pipeline import RUN_STAGES, PlannedStage, RunResult, check_run, run_pipeline, stage_plan

__all__ = [
    "RUN_STAGES",
    "ConfigError",
    "MlflowLog",
    "PlannedStage",
    "RunConfig",
    "RunAborted",
    "RunResult",
    "check_run",
    "dump_config",
    "load_config",
    "log_run",
    "run_pipeline",
    "stage_plan",
]
