"""One design run: supernet → search (per device) → select → retrain → compress → export → measure → report.

:func:`run_pipeline` checks the whole config first (names, devices reachable, data readable), then
runs each stage not yet done, recording its status and outputs in the run store. Re-running the
same command after a crash (even ``kill -9``) resumes at the first unfinished stage: finished
stages are skipped, the supernet resumes from its last epoch checkpoint, a search replays its
stored evaluations without re-running them, and finished models are not trained again.

>>> from slimforge.runs import load_config, run_pipeline
>>> result = run_pipeline(load_config("design.yaml"), "runs/design")      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimforge import __version__
from slimforge.errors import SlimforgeError
from slimforge.registry import Registry
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._preflight import preflight
from slimforge.runs._summary import RunSummary, summarize
from slimforge.runs.config import ConfigError, RunConfig, dump_config
from slimforge.runs.layout import CONFIG_FILE, FORMAT_VERSION, STORE_FILE, search_stage
from slimforge.runs.store import RunStore

__all__ = ["STAGE_RUNNERS", "RunResult", "open_run", "run_pipeline", "stage_plan"]

StageRunner = Callable[..., dict]

#: stage name -> function(ctx[, device]) -> outputs; "search" runs once per device.
STAGE_RUNNERS: Registry[StageRunner] = Registry("run stage")
STAGE_RUNNERS.register("supernet", "slimforge.runs._stage_supernet:run_supernet_stage")
STAGE_RUNNERS.register("search", "slimforge.runs._stage_search:run_search_stage")
STAGE_RUNNERS.register("select", "slimforge.runs._stage_select:run_select_stage")
STAGE_RUNNERS.register("retrain", "slimforge.runs._stage_retrain:run_retrain_stage")
STAGE_RUNNERS.register("compress", "slimforge.runs._stage_deploy:run_compress_stage")
STAGE_RUNNERS.register("export", "slimforge.runs._stage_deploy:run_export_stage")
STAGE_RUNNERS.register("measure", "slimforge.runs._stage_deploy:run_measure_stage")
STAGE_RUNNERS.register("report", "slimforge.runs._stage_report:run_report_stage")


@dataclass(frozen=True)
class RunResult:
    """What a run did: where it is, each stage's status, and the one-screen summary."""

    run_dir: str
    stages: dict[str, str]
    resumed: tuple[str, ...]
    summary: RunSummary

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "run_dir": self.run_dir,
            "stages": dict(self.stages),
            "resumed": list(self.resumed),
            "summary": self.summary.to_dict(),
        }


def stage_plan(config: RunConfig) -> list[tuple[str, Callable[[RunContext], dict]]]:
    """The stages of a run in order, as (stage name, runner) pairs."""
    plan: list[tuple[str, Callable[[RunContext], dict]]] = [("supernet", STAGE_RUNNERS.get("supernet"))]
    search = STAGE_RUNNERS.get("search")
    for device in config.devices:
        plan.append((search_stage(device.name), lambda ctx, _d=device.name: search(ctx, _d)))
    for name in ("select", "retrain", "compress", "export", "measure", "report"):
        plan.append((name, STAGE_RUNNERS.get(name)))
    return plan


def open_run(config: RunConfig, run_dir: str | os.PathLike) -> RunStore:
    """Create the run directory, or open it to resume; a different config or version is refused."""
    run_dir = Path(run_dir)
    store_path = run_dir / STORE_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file; give a directory")
    if store_path.exists():
        store = RunStore(store_path, create=False)
        try:
            _check_resumable(store, config, run_dir)
        except BaseException:
            store.close()
            raise
        return store
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(
            f"{run_dir} exists and is not a slimforge run directory (no {STORE_FILE}); give a new directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{CONFIG_FILE}.partial"
    tmp.write_text(dump_config(config), encoding="utf-8")
    tmp.replace(run_dir / CONFIG_FILE)
    store = RunStore(store_path)
    store.set_meta("run", {"format_version": FORMAT_VERSION, "slimforge": __version__, "config": config.to_dict()})
    return store


def _check_resumable(store: RunStore, config: RunConfig, run_dir: Path) -> None:
    meta = store.get_meta("run")
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ConfigError(f"{run_dir} holds a run store but no run record; give a new run directory")
    if meta["format_version"] != FORMAT_VERSION:
        raise ConfigError(
            f"{run_dir} was written by slimforge {meta.get('slimforge', '?')} in run format "
            f"{meta['format_version']}; this slimforge ({__version__}) reads format {FORMAT_VERSION}: "
            "re-run it into a new directory"
        )
    saved = meta.get("config", {})
    mine = config.to_dict()
    diffs = _differences(saved, mine)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise ConfigError(
            f"{run_dir} holds a run with other settings ({shown} [saved vs given]); "
            "resume it with the same config or give a new run directory"
        )


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def run_pipeline(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    stop_after: str | None = None,
) -> RunResult:
    """Run (or resume) every unfinished stage of ``config`` in ``run_dir``.

    Args:
        config: the validated config.
        run_dir: the run directory; created on first use, resumed afterwards.
        progress: progress bars on stderr.
        log: where one-line stage messages go (stderr by default).
        stop_after: stop once this stage (e.g. ``"search:cpu"`` or ``"select"``) is done.
    """
    plan = stage_plan(config)
    names = [name for name, _ in plan]
    if stop_after is not None and stop_after not in names:
        raise ConfigError(f"unknown stage {stop_after!r} for --stop-after (stages: {', '.join(names)})")
    preflight(config)
    store = open_run(config, run_dir)
    resumed: list[str] = []
    try:
        ctx = RunContext(config, Path(run_dir), store, progress=progress, log=log)
        for k, (name, runner) in enumerate(plan, start=1):
            record = store.get_stage(name)
            if record is not None and record.status == "done":
                resumed.append(name)
            else:
                again = " (again)" if record is not None else ""
                ctx.log(f"[{k}/{len(plan)}] {name}{again}")
                store.set_stage(name, "running", {})
                try:
                    outputs = runner(ctx)
                except Exception as exc:
                    store.set_stage(name, "failed", {"error": f"{type(exc).__name__}: {exc}"})
                    if isinstance(exc, OSError) and not isinstance(exc, SlimforgeError):
                        # disk full, permissions: the store stays consistent; say what to fix
                        raise StageError(
                            f"stage {name} could not write its files: {exc}; free space or fix "
                            f"permissions under {run_dir}, then run the same command again to resume"
                        ) from exc
                    raise
                store.set_stage(name, "done", outputs)
            if name == stop_after:
                break
        stages = {s.name: s.status for s in store.stages()}
        summary = summarize(ctx)
    finally:
        store.close()
    return RunResult(str(run_dir), {n: stages.get(n, "pending") for n in names}, tuple(resumed), summary)
