"""Stage ``search:<device>``: the multi-objective search against one device, from the shared supernet.

Accuracy (``error``) comes from the supernet trained once for the run (or an accuracy table);
latency from the device: a lookup table built on it (``cost: lut``), a measurement of every
candidate (``cost: measure``) or the device's own table (``cost: table``). Each device's search
has its own store, so an interrupted search resumes without re-evaluating anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slimforge.io import atomic_path, atomic_write_json
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._outputs import SearchOutput
from slimforge.runs._stage import RunStage, data_settings
from slimforge.runs.config import ConfigError, DeviceConfig, RunConfig
from slimforge.runs.layout import search_dir, search_stage

__all__ = ["SearchStage", "build_search_problem", "make_device"]

def make_device(device: DeviceConfig) -> Any:
    """The :class:`slimforge.hardware.devices.Device` a device config names."""
    from slimforge.hardware.devices import get_device

    options: dict[str, Any] = {}
    if device.token_file is not None:
        options["token_file"] = device.token_file
    return get_device(device.spec, **options)


def accuracy_evaluator(ctx: RunContext) -> Any:
    """The evaluator giving ``error`` / ``accuracy``: an accuracy table, or the estimate the audit chose.

    Without an audit (or when it chose the supernet) that is the supernet's inherited-weight
    accuracy; otherwise the chosen estimator (zero-cost ensemble, parameter count, or their blend
    with the supernet) mapped onto accuracy by the fit on the calibration set.
    """
    from slimforge.search import make_evaluator

    source = ctx.config.accuracy.source
    if source.startswith("table:"):
        return make_evaluator("accuracy_table", ctx.space, path=source.partition(":")[2])
    from slimforge.runs._stage_calibrate import estimator_evaluators
    from slimforge.search import StoredEvaluator

    members = estimator_evaluators(ctx)
    audit = ctx.output("calibrate").audit
    if audit is None or audit.chosen == "supernet":
        inner = members["supernet"]
    else:
        from slimforge.estimators import fit_blend

        blend = audit.blend if audit.chosen == "blend" else fit_blend(
            {audit.chosen: audit.score(audit.chosen).scores}, audit.truth_pct
        )
        inner = make_evaluator("calibrated_accuracy", ctx.space, members={m: members[m] for m in blend.members},
                               blend=blend.to_dict())
    # The estimate does not depend on the device: every device's search shares one store of
    # accuracies, so a second device evaluates only architectures not seen yet. It is named by
    # the fingerprint of what made it: a retrained supernet or a new audit starts a new one.
    return StoredEvaluator(inner, ctx.path(f"search/accuracy-{ctx.fingerprints['calibrate']}.sqlite"))


def cost_evaluator(ctx: RunContext, device: DeviceConfig) -> tuple[Any, str]:
    """The evaluator giving ``latency_ms`` (and ``energy_mj`` where the device has it), and how."""
    from slimforge.search import make_evaluator

    if device.cost == "table":
        path = device.spec.partition(":")[2]
        return make_evaluator("device_table", ctx.space, path=path), f"table {path}"
    if device.cost == "measure":
        ev = make_evaluator(
            "measured_latency",
            ctx.space,
            device=device.spec,
            input_shape=ctx.input_shape,
            threads=device.threads,
            time_cap_s=device.time_cap_s,
            num_classes=ctx.splits.num_classes,
            store_path=str(ctx.path("store.sqlite")),
            token_file=device.token_file,
        )
        return ev, f"measured on {device.spec} ({device.threads} thread(s), median)"
    lut_path = _lookup_table(ctx, device)
    return make_evaluator("lut_latency", ctx.space, path=str(lut_path)), f"lookup table {ctx.rel(lut_path)}"


def _lut_path(ctx: RunContext, device: DeviceConfig) -> Path:
    """Where the device's lookup table is cached: named by what it depends on, so searches reuse it."""
    key = {"space": asdict(ctx.config.space), "device": asdict(device), "input": list(ctx.input_shape),
           "classes": ctx.splits.num_classes, "seed": ctx.config.seed}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return ctx.path(f"cache/lut-{device.name}-{digest}.csv")


def _lookup_table(ctx: RunContext, device: DeviceConfig) -> Any:
    """Build the device's latency lookup table once (``cache/lut-<device>-<hash>.csv``)."""
    from slimforge.hardware.latency import LatencyProtocol
    from slimforge.hardware.lut import build_lut, calibrate_lut

    path = _lut_path(ctx, device)
    if path.is_file():
        return path
    ctx.log(f"  building the latency lookup table of {ctx.space.name} on {device.spec}")
    dev = make_device(device)
    table = build_lut(
        ctx.config.space.name,
        dev,
        space_options=dict(ctx.config.space.options),
        input_shape=ctx.input_shape,
        threads=device.threads,
        num_classes=ctx.splits.num_classes,
        protocol=LatencyProtocol(
            time_cap_s=min(device.time_cap_s, 1.0),
            min_time_s=min(device.time_cap_s, 0.2),
            warmup_s=min(device.time_cap_s, 0.2),
        ),
        seed=ctx.config.seed,
        progress=ctx.progress,
    )
    if device.lut_calibration:
        table = calibrate_lut(
            table,
            dev,
            networks=device.lut_calibration,
            threads=device.threads,
            protocol=LatencyProtocol(
                time_cap_s=device.time_cap_s,
                min_time_s=min(device.time_cap_s, 1.0),
                warmup_s=min(device.time_cap_s, 1.0),
            ),
            seed=ctx.config.seed + 10_000,
        )
    with atomic_path(path, suffix=".csv") as tmp:
        table.save(tmp)
    return path


def build_search_problem(ctx: RunContext, device: DeviceConfig) -> tuple[Any, str, str]:
    """The device's search problem (through :func:`slimforge.search.build_problem`), with where its
    accuracy and its cost come from."""
    from slimforge.search import ACCURACY_SOURCES, DEVICE_SOURCES, build_problem
    from slimforge.search.constraint import Constraint

    cfg = ctx.config.search
    needed = set(cfg.objectives) | {Constraint.parse(c).metric for c in cfg.constraints}
    accuracy = cost = None
    accuracy_source = cost_source = "none"
    if needed & {m for k in ACCURACY_SOURCES for m in ACCURACY_SOURCES.get(k).gives}:
        accuracy, accuracy_source = accuracy_evaluator(ctx), ctx.config.accuracy.source
    if needed & {m for k in DEVICE_SOURCES for m in DEVICE_SOURCES.get(k).gives}:
        cost, cost_source = cost_evaluator(ctx, device)
    try:
        problem = build_problem(
            ctx.space, cfg.objectives, accuracy=accuracy, device=cost, constraints=cfg.constraints,
            num_classes=ctx.splits.num_classes, input_shape=ctx.input_shape,
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"search (device {device.name!r}): {exc}") from None
    return problem, accuracy_source, cost_source


class SearchStage(RunStage):
    """Search the space against one device; resumes from the device's search store."""

    name = "search"
    output = SearchOutput

    def __init__(self, device: str) -> None:
        self.device = device

    @property
    def key(self) -> str:
        return search_stage(self.device)

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("supernet", "calibrate")

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {
            **data_settings(config),
            "space": asdict(config.space), "accuracy": asdict(config.accuracy),
            "device": asdict(config.device(self.device)), "search": asdict(config.search),
        }

    def check(self, config: RunConfig) -> None:
        from slimforge.hardware.lut import split_layerwise
        from slimforge.runs._preflight import at, search_metrics
        from slimforge.search import make_evaluator
        from slimforge.search.algorithms import make_algorithm
        from slimforge.spaces import get_space

        space = get_space(config.space.name, **config.space.options)
        at("search.algorithm", lambda: make_algorithm(config.search.algorithm, space, seed=0, **config.search.settings))
        metrics = search_metrics(config)
        source = config.accuracy.source
        if source.startswith("table:"):
            at("accuracy.source", lambda: make_evaluator("accuracy_table", space, path=source.partition(":")[2]))
        i, d = next((i, d) for i, d in enumerate(config.devices) if d.name == self.device)
        key = f"devices[{i}] ({d.name})"
        device = at(f"{key}.spec", lambda: make_device(d))
        at(f"{key}.spec", device.describe)  # a remote agent is reached now, before any training
        if d.cost == "lut":
            if "energy_mj" in metrics:
                raise ConfigError(f"{key}.cost lut gives latency only, but the search wants energy_mj; use cost measure")
            at(f"{key}.cost", lambda: split_layerwise(space, getattr(space, "input_shape", (1, 3, 32, 32))))
        if d.cost == "table" and getattr(getattr(device, "table", None), "space", space.name) != space.name:
            raise ConfigError(f"{key}.spec: the table is for space {device.table.space!r}, the run searches {space.name!r}")

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return [search_dir(ctx.run_dir, self.device)]

    def _run(self, ctx: RunContext) -> SearchOutput:
        from slimforge.io import RunStore
        from slimforge.search import minimize

        device = ctx.config.device(self.device)
        cfg = ctx.config.search
        out = search_dir(ctx.run_dir, device.name)
        problem, accuracy_source, cost_source = build_search_problem(ctx, device)
        with RunStore(out / "store.sqlite") as store:
            result = minimize(
                problem,
                cfg.algorithm,
                budget=cfg.budget,
                seed=ctx.config.seed,
                settings=dict(cfg.settings),
                store=store,
                resume=True,
                progress=ctx.progress,
            )
        if result.num_evaluations == 0:
            raise StageError(f"the search on {device.name!r} evaluated nothing")
        atomic_write_json(out / "result.json", result.to_dict())
        ctx.log(f"  {device.name}: {result.message}")
        return SearchOutput(
            device=device.name,
            spec=device.spec,
            dir=ctx.rel(out),
            result=ctx.rel(out / "result.json"),
            objectives=tuple(result.objectives),
            constraints=tuple(result.constraints),
            evaluations=result.num_evaluations,
            front=len(result.front),
            accuracy_source=accuracy_source,
            cost_source=cost_source,
            message=result.message,
        )
