"""One design run: supernet → calibrate → search (per device) → select → retrain → reference → compress → export → measure → report.

:func:`run_pipeline` takes the run directory's lock (one process per directory), checks the whole
config (names, devices reachable, data readable: every stage's own checks), then walks the stage
plan. A stage whose fingerprint (its settings and its inputs' fingerprints) matches a finished
record is reused; one that was interrupted (``kill -9``, a crash) resumes; one whose settings
changed re-runs from nothing, and so does everything downstream of it. Changing
``retrain.epochs`` therefore retrains and recompresses but keeps the supernet and the searches.

>>> from slimforge.runs import load_config, run_pipeline
>>> result = run_pipeline(load_config("design.yaml"), "runs/design")      # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimforge import __version__
from slimforge.errors import SlimforgeError
from slimforge.io import RunStore
from slimforge.registry import Registry
from slimforge.report import RunSummary
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._preflight import preflight
from slimforge.runs._stage import RunStage, fingerprint
from slimforge.runs.config import ConfigError, RunConfig, dump_config
from slimforge.runs.layout import CONFIG_FILE, FORMAT_VERSION, STORE_FILE

__all__ = ["RUN_STAGES", "PlannedStage", "RunResult", "check_run", "open_run", "run_pipeline", "stage_plan"]

#: stage name -> stage class, in run order ("search" is instantiated once per device).
RUN_STAGES: Registry[type[RunStage]] = Registry("run stage")
RUN_STAGES.register("supernet", "slimforge.runs._stage_supernet:SupernetStage")
RUN_STAGES.register("calibrate", "slimforge.runs._stage_calibrate:CalibrateStage")
RUN_STAGES.register("search", "slimforge.runs._stage_search:SearchStage")
RUN_STAGES.register("select", "slimforge.runs._stage_select:SelectStage")
RUN_STAGES.register("retrain", "slimforge.runs._stage_retrain:RetrainStage")
RUN_STAGES.register("reference", "slimforge.runs._stage_retrain:ReferenceStage")
RUN_STAGES.register("compress", "slimforge.runs._stage_compress:CompressStage")
RUN_STAGES.register("export", "slimforge.runs._stage_export:ExportStage")
RUN_STAGES.register("measure", "slimforge.runs._stage_measure:MeasureStage")
RUN_STAGES.register("report", "slimforge.runs._stage_report:ReportStage")
#: the order stages run in.
STAGE_ORDER = ("supernet", "calibrate", "search", "select", "retrain", "reference", "compress", "export", "measure", "report")


@dataclass(frozen=True)
class PlannedStage:
    """A stage of the plan with its fingerprint and what the run store says about it.

    ``action`` is ``reuse`` (finished with these settings), ``resume`` (interrupted with these
    settings), ``rerun`` (finished or started with other settings: its files are removed first)
    or ``run`` (never started).
    """

    stage: RunStage
    fingerprint: str
    action: str


@dataclass(frozen=True)
class RunResult:
    """What a run did: where it is, each stage's status, what was reused, and the summary."""

    run_dir: str
    stages: dict[str, str]
    resumed: tuple[str, ...]
    summary: RunSummary
    threads: str = ""
    rerun: tuple[str, ...] = ()
    #: processes that trained it (torchrun's ``WORLD_SIZE``; 1 without torchrun).
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``world_size`` only for a run trained by several processes)."""
        out = {
            "run_dir": self.run_dir,
            "stages": dict(self.stages),
            "resumed": list(self.resumed),
            "rerun": list(self.rerun),
            "threads": self.threads,
            "summary": self.summary.to_dict(),
            "regressions": list(self.summary.regressions),
        }
        if self.world_size > 1:
            out["world_size"] = self.world_size
        return out


def stage_plan(config: RunConfig) -> list[RunStage]:
    """The stages of a run in order (one search per device)."""
    plan: list[RunStage] = []
    for name in STAGE_ORDER:
        cls = RUN_STAGES.get(name)
        if name == "search":
            plan += [cls(d.name) for d in config.devices]  # type: ignore[call-arg]
        elif name == "report":
            plan.append(cls(tuple(s.key for s in plan)))  # type: ignore[call-arg]
        else:
            plan.append(cls())
    return plan


def _fingerprints(config: RunConfig, plan: list[RunStage]) -> dict[str, str]:
    out: dict[str, str] = {}
    for stage in plan:
        out[stage.key] = fingerprint(stage.key, stage.settings(config), {k: out[k] for k in stage.inputs(config)})
    return out


def _action(record: Any, fp: str) -> str:
    if record is None:
        return "run"
    if record.fingerprint != fp:
        return "rerun"
    return "reuse" if record.status == "done" else "resume"


def check_run(config: RunConfig, run_dir: str | os.PathLike | None = None) -> list[PlannedStage]:
    """Validate everything the run validates before training, and say what each stage would do.

    Nothing is written. With ``run_dir`` an existing run there is compared stage by stage.
    """
    plan = stage_plan(config)
    preflight(config, plan)
    resolve_train_devices(config)
    fps = _fingerprints(config, plan)
    records: dict[str, Any] = {}
    store_path = Path(run_dir) / STORE_FILE if run_dir is not None else None
    if store_path is not None and store_path.is_file():
        with RunStore(store_path, create=False) as store:
            _check_format(store, Path(run_dir))  # type: ignore[arg-type]
            records = {r.name: r for r in store.stages()}
    planned, dirty = [], False
    for stage in plan:
        action = _action(records.get(stage.key), fps[stage.key])
        if dirty and action == "reuse":
            action = "rerun"  # cannot happen with honest fingerprints; kept as a guard
        dirty = dirty or action in ("rerun", "run")
        planned.append(PlannedStage(stage, fps[stage.key], action))
    return planned


def open_run(config: RunConfig, run_dir: str | os.PathLike) -> RunStore:
    """Create the run directory atomically, or open it to resume; another format is refused.

    A new run directory is built beside its final place (config, store) and renamed into place,
    so a crash never leaves a half-made directory that refuses to resume.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file; give a directory")
    if not (run_dir / STORE_FILE).exists():
        _create(config, run_dir)
    store = RunStore(run_dir / STORE_FILE, create=False)
    try:
        _check_format(store, run_dir)
    except BaseException:
        store.close()
        raise
    return store


def _create(config: RunConfig, run_dir: Path) -> None:
    from slimforge.io import LOCK_FILE

    if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise ConfigError(
            f"{run_dir} exists and is not a slimforge run directory (no {STORE_FILE}); give a new directory"
        )
    parent = run_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".new", dir=parent))
    except OSError as exc:
        raise ConfigError(
            f"cannot create run directory {run_dir}: {exc.strerror or exc}; choose a writable --out"
        ) from None
    try:
        (tmp / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
        with RunStore(tmp / STORE_FILE) as store:
            store.set_meta("run", {"format_version": FORMAT_VERSION, "slimforge": __version__,
                                   "config": config.to_dict()})
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, run_dir)  # replaces an empty directory; fails if another run made it first
        except OSError:
            if not (run_dir / STORE_FILE).exists():
                raise
    except OSError as exc:
        raise ConfigError(f"cannot create run directory {run_dir}: {exc.strerror or exc}; choose a writable --out") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_format(store: RunStore, run_dir: Path) -> None:
    meta = store.get_meta("run")
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ConfigError(f"{run_dir} holds a run store but no run record; give a new run directory")
    if meta["format_version"] != FORMAT_VERSION:
        raise ConfigError(
            f"{run_dir} was written by slimforge {meta.get('slimforge', '?')} in run format "
            f"{meta['format_version']}; this slimforge ({__version__}) reads format {FORMAT_VERSION}: "
            "re-run it into a new directory"
        )


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def _record_config(store: RunStore, config: RunConfig, run_dir: Path, log: Callable[[str], None]) -> None:
    """Make the store's run record and ``config.yaml`` say the config this run uses (atomically)."""
    from slimforge.io import atomic_write_text

    mine = config.to_dict()
    changed: list[str] = []

    def update(meta: Any) -> Any:
        changed.extend(_differences(meta.get("config", {}), mine))
        return {**meta, "config": mine, "slimforge": __version__}

    store.update_meta("run", update)
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        log(f"settings changed since the last run: {shown}")
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(config))


def _choose_threads(config: RunConfig, threads: int | None) -> tuple[int, str]:
    import torch

    from slimforge.hardware.threads import fastest_torch_threads

    wanted = threads if threads is not None else config.threads
    if wanted is not None:
        torch.set_num_threads(wanted)
        return wanted, f"{wanted} thread{'s' if wanted != 1 else ''} (as given)"
    choice = fastest_torch_threads()
    return choice.threads, choice.describe()


def resolve_train_devices(config: RunConfig, say: Callable[[str], None] | None = None) -> tuple[str, str]:
    """``(train_device, supernet_device)`` of ``config``, resolved here (``auto``: a GPU when there is one).

    A device this machine lacks (``cuda`` without a GPU) raises a one-line error naming the key,
    the value and the fix. The deprecated ``supernet.device`` still sets the supernet's device.
    """
    from slimforge.training import resolve_train_device

    train = str(resolve_train_device(config.train_device, option="train_device"))
    supernet = train
    if config.supernet.device is not None:
        if say is not None:
            say("supernet.device is deprecated, use train_device (the old key goes in the next release)")
        supernet = str(resolve_train_device(config.supernet.device, option="supernet.device"))
    return train, supernet


def run_pipeline(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    stop_after: str | None = None,
    threads: int | None = None,
    wait: bool = False,
) -> RunResult:
    """Run (or resume, or update) every stage of ``config`` in ``run_dir``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the supernet, retraining and the references train
    data-parallel on every process and everything else runs on rank 0 alone
    (:mod:`slimforge.runs._parallel`); every process returns the run's result, with ``world_size`` set.

    Args:
        config: the validated config.
        run_dir: the run directory; created on first use, resumed or updated afterwards.
        progress: progress on stderr (bars on a terminal, a plain line every ~10 s otherwise).
        log: where one-line stage messages go (stderr by default).
        stop_after: stop once this stage (e.g. ``"search:cpu"`` or ``"select"``) is done.
        threads: PyTorch threads (overrides ``config.threads``; None there picks the fastest).
        wait: wait for another process holding the run directory instead of failing.
    """
    from slimforge.runs._parallel import same_on_every_rank
    from slimforge.training.distributed import env_rank

    rank, world, _ = env_rank()
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    if rank != 0:
        say = lambda text: None  # noqa: E731 (rank 0 says it)
    with same_on_every_rank(rank):
        plan = stage_plan(config)
        keys = [s.key for s in plan]
        if stop_after is not None and stop_after not in keys:
            raise ConfigError(f"unknown stage {stop_after!r} for --stop-after (stages: {', '.join(keys)})")
        preflight(config, plan)
        devices = resolve_train_devices(config, say)  # before anything is written
    run_dir = Path(run_dir)

    def lead(ranks: Any = None) -> RunResult:
        from slimforge.io import DirectoryLock

        if not (run_dir / STORE_FILE).exists():
            _create(config, run_dir)
        with DirectoryLock(run_dir, wait=wait, what="run directory"):
            store = open_run(config, run_dir)
            try:
                return _walk(config, run_dir, store, plan, progress, say, stop_after, threads, devices, ranks)
            finally:
                store.close()

    if world == 1:
        return lead()
    return _data_parallel(config, run_dir, plan, devices, world, lead)


def _data_parallel(
    config: RunConfig,
    run_dir: Path,
    plan: list[RunStage],
    devices: tuple[str, str],
    world: int,
    lead: Callable[[Any], RunResult],
) -> RunResult:
    """The run under torchrun: rank 0 leads (``lead``), the others train what it announces."""
    import dataclasses

    import torch

    from slimforge.runs._parallel import Ranks, check_world, same_on_every_rank
    from slimforge.training.distributed import distributed_from_env, env_rank

    with same_on_every_rank(env_rank()[0]):
        check_world(config, world, devices)
    with distributed_from_env(torch.device(devices[0])) as dist:
        ranks = Ranks(dist, plan)
        if ranks.is_main:
            result = ranks.lead(lambda: lead(ranks))
        else:
            ranks.follow(config, run_dir, *devices)
            result = _stored_result(run_dir, plan)
    return dataclasses.replace(result, world_size=world)


def _stored_result(run_dir: Path, plan: list[RunStage]) -> RunResult:
    """The result of a finished run as its store says (what a rank other than 0 returns)."""
    from slimforge.report import SUMMARY_META_KEY

    with RunStore(run_dir / STORE_FILE, create=False) as store:
        stages = {s.name: s.status for s in store.stages()}
        summary = RunSummary.from_dict(store.get_meta(SUMMARY_META_KEY))
    return RunResult(str(run_dir), {s.key: stages.get(s.key, "pending") for s in plan}, (), summary)


def _walk(
    config: RunConfig,
    run_dir: Path,
    store: RunStore,
    plan: list[RunStage],
    progress: bool,
    say: Callable[[str], None],
    stop_after: str | None,
    threads: int | None,
    devices: tuple[str, str] = ("cpu", "cpu"),
    ranks: Any = None,
) -> RunResult:
    from slimforge.report import SUMMARY_META_KEY

    _record_config(store, config, run_dir, say)
    ctx = RunContext(config, run_dir, store, progress=progress, log=say)
    ctx.fingerprints = _fingerprints(config, plan)
    keys = {s.key for s in plan}
    for record in store.stages():  # (a store edited outside slimforge fails here, before any work)
        if record.name not in keys:  # a stage the config no longer has (a removed device)
            store.delete_stage(record.name)
    ctx.threads, thread_note = _choose_threads(config, threads)
    ctx.train_device, ctx.supernet_device = devices
    if ranks is not None:
        ctx.ranks, ctx.dist = ranks, ranks.dist
        ranks.started(ctx.threads)
    say(f"training with {thread_note} on {ctx.train_device}")
    resumed, rerun = [], []
    for k, stage in enumerate(plan, start=1):
        fp = ctx.fingerprints[stage.key]
        record = store.get_stage(stage.key)
        action = _action(record, fp)
        if action == "reuse":
            try:
                ctx.results[stage.key] = stage.output.from_dict(record.outputs)
                resumed.append(stage.key)
            except (SlimforgeError, TypeError, ValueError, KeyError):
                action = "rerun"  # outputs of an older slimforge: do the stage again
        if action != "reuse":
            note = {"run": "", "resume": " (resuming: it was interrupted)",
                    "rerun": " (again: its settings or inputs changed)"}[action]
            say(f"[{k}/{len(plan)}] {stage.key}{note}")
            if action == "rerun":
                stage.clean(ctx)
                rerun.append(stage.key)
            _run_stage(ctx, stage, fp, run_dir)
        ctx.save_summary()
        if stage.key == stop_after:
            break
    stages = {s.name: s.status for s in store.stages()}
    summary = RunSummary.from_dict(store.get_meta(SUMMARY_META_KEY))
    return RunResult(str(run_dir), {s.key: stages.get(s.key, "pending") for s in plan}, tuple(resumed),
                     summary, thread_note, tuple(rerun))


def _run_stage(ctx: RunContext, stage: RunStage, fp: str, run_dir: Path) -> None:
    ctx.store.set_stage(stage.key, "running", {}, fingerprint=fp)
    try:
        if ctx.ranks is None:
            output = stage.run(ctx)
        else:
            with ctx.ranks.stage(stage):  # a training stage: every rank trains it
                output = stage.run(ctx)
    except Exception as exc:
        ctx.store.set_stage(stage.key, "failed", {"error": f"{type(exc).__name__}: {exc}"}, fingerprint=fp)
        if isinstance(exc, OSError) and not isinstance(exc, SlimforgeError):
            # disk full, permissions: the store stays consistent; say what to fix
            raise StageError(
                f"stage {stage.key} could not write its files: {exc}; free space or fix "
                f"permissions under {run_dir}, then run the same command again to resume"
            ) from exc
        raise
    ctx.store.set_stage(stage.key, "done", output.to_dict(), fingerprint=fp)
    ctx.results[stage.key] = output
