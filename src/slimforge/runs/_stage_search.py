"""Stage ``search:<device>``: the multi-objective search against one device, from the shared supernet.

Accuracy (``error``) comes from the supernet trained once for the run (or an accuracy table);
latency from the device: a lookup table built on it (``cost: lut``), a measurement of every
candidate (``cost: measure``) or the device's own table (``cost: table``). Each device's search
has its own store, so an interrupted search resumes without re-evaluating anything.
"""

from __future__ import annotations

from typing import Any

from slimforge.runs._context import RunContext, StageError, write_json_atomic
from slimforge.runs.config import ConfigError, DeviceConfig
from slimforge.runs.layout import search_dir

__all__ = ["ANALYTIC_METRICS", "make_device", "run_search_stage"]

#: metrics any candidate has without a device or an accuracy source: metric -> evaluator name.
ANALYTIC_METRICS = {
    "num_params": "num_params",
    "macs": "macs",
    "peak_mem_bytes": "peak_memory",
    "model_bytes": "model_size",
}
_ACCURACY_METRICS = ("error", "accuracy")
_DEVICE_METRICS = ("latency_ms", "energy_mj")


def make_device(device: DeviceConfig) -> Any:
    """The :class:`slimforge.hardware.devices.Device` a device config names."""
    from slimforge.hardware.devices import get_device

    options: dict[str, Any] = {}
    if device.token_file is not None:
        options["token_file"] = device.token_file
    return get_device(device.spec, **options)


def accuracy_evaluator(ctx: RunContext) -> Any:
    """The evaluator giving ``error`` / ``accuracy``: the run's supernet or an accuracy table."""
    from slimforge.search import make_evaluator

    source = ctx.config.accuracy.source
    if source.startswith("table:"):
        return make_evaluator("accuracy_table", ctx.space, path=source.partition(":")[2])
    from slimforge.runs.bench._cache import StoredEvaluator

    supernet_dir = ctx.outputs("supernet")["dir"]
    inner = make_evaluator(
        "supernet_accuracy",
        ctx.space,
        checkpoint=str(ctx.path(supernet_dir)),
        data=ctx.config.data,
        split="val",
        val_fraction=ctx.config.val_fraction,
        bn_images=ctx.config.accuracy.bn_images,
        eval_images=ctx.config.accuracy.eval_images,
        seed=ctx.config.seed,
    )
    # The supernet's answer does not depend on the device: every device's search shares one store
    # of inherited-weight accuracies, so a second device evaluates only architectures not seen yet.
    return StoredEvaluator(inner, ctx.path("search/accuracy.sqlite"))


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


def _lookup_table(ctx: RunContext, device: DeviceConfig) -> Any:
    """Build the device's latency lookup table once (``search/<device>/lut.csv``)."""
    from slimforge.hardware.latency import LatencyProtocol
    from slimforge.hardware.lut import build_lut, calibrate_lut

    path = search_dir(ctx.run_dir, device.name) / "lut.csv"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".lut.csv.partial")
    table.save(tmp)
    tmp.replace(path)
    return path


def build_search_problem(ctx: RunContext, device: DeviceConfig) -> tuple[Any, str, str]:
    """The device's search problem, with where its accuracy and its cost come from."""
    from slimforge.search import Problem, make_evaluator
    from slimforge.search.constraint import Constraint

    cfg = ctx.config.search
    needed = set(cfg.objectives) | {Constraint.parse(c).metric for c in cfg.constraints}
    evaluators, accuracy_source, cost_source = [], "none", "none"
    if needed & set(_ACCURACY_METRICS):
        evaluators.append(accuracy_evaluator(ctx))
        accuracy_source = ctx.config.accuracy.source
    if needed & set(_DEVICE_METRICS):
        ev, cost_source = cost_evaluator(ctx, device)
        evaluators.append(ev)
    for metric in sorted(needed & set(ANALYTIC_METRICS)):
        evaluators.append(
            make_evaluator(
                ANALYTIC_METRICS[metric],
                ctx.space,
                num_classes=ctx.splits.num_classes,
                **({} if metric == "num_params" else {"input_shape": ctx.input_shape}),
            )
        )
    try:
        problem = Problem(ctx.space, cfg.objectives, evaluators, cfg.constraints)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"search (device {device.name!r}): {exc}") from None
    return problem, accuracy_source, cost_source


def run_search_stage(ctx: RunContext, device_name: str) -> dict[str, Any]:
    """Search the space against one device; resumes from the device's search store."""
    from slimforge.runs.store import RunStore
    from slimforge.search import minimize

    device = ctx.config.device(device_name)
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
    write_json_atomic(out / "result.json", result.to_dict())
    ctx.log(f"  {device.name}: {result.message}")
    return {
        "device": device.name,
        "spec": device.spec,
        "dir": ctx.rel(out),
        "result": ctx.rel(out / "result.json"),
        "objectives": list(result.objectives),
        "constraints": list(result.constraints),
        "evaluations": result.num_evaluations,
        "front": len(result.front),
        "accuracy_source": accuracy_source,
        "cost_source": cost_source,
    }
