"""Stage ``select``: pick the architectures of each device's front that go on to retraining."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from slimforge.runs._context import RunContext, StageError
from slimforge.runs._outputs import ChosenArch, SelectOutput
from slimforge.runs._stage import RunStage
from slimforge.runs.config import ConfigError, RunConfig
from slimforge.runs.layout import search_stage

__all__ = ["SelectStage"]


def _pick(ctx: RunContext, device: str, result: Any) -> list[tuple[str, Any]]:
    """(rule label, evaluation) pairs chosen from one device's search result."""
    from slimforge.search import best, knee_point, within_of_best

    sel = ctx.config.select
    if sel.rule == "knee":
        chosen = [("knee", knee_point(result))]
    elif sel.rule == "best":
        chosen = [("best", best(result, sel.objective))]
    elif sel.rule == "within":
        pick = within_of_best(result, sel.epsilon, objective=sel.objective, cost=sel.cost)
        chosen = [(f"within {sel.epsilon:g} of best {sel.objective}", pick)]
    else:
        chosen = [("list", _listed(ctx, device, result, arch)) for arch in sel.archs]
    return [(label, e) for label, e in chosen if e is not None]


def _listed(ctx: RunContext, device: str, result: Any, arch: str) -> Any:
    """The evaluation of an architecture the user listed (evaluated now if the search never met it)."""
    from slimforge.runs._stage_search import build_search_problem

    space = ctx.space
    genome = space.canonical(space.from_string(arch))
    for e in result.evaluations:
        if tuple(e.genome) == genome:
            return e
    problem, _, _ = build_search_problem(ctx, ctx.config.device(device))
    return problem.evaluate(genome)


class SelectStage(RunStage):
    """Apply the selection rule to every device's search result."""

    name = "select"
    output = SelectOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return tuple(search_stage(d.name) for d in config.devices)

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {"select": asdict(config.select)}

    def check(self, config: RunConfig) -> None:
        from slimforge.runs._preflight import at, search_metrics
        from slimforge.spaces import get_space

        metrics = search_metrics(config)
        for key in ("objective", "cost"):
            value = getattr(config.select, key)
            if config.select.rule in ("best", "within") and value not in metrics:
                raise ConfigError(
                    f"select.{key} {value!r} is not among the search's objectives or constraints "
                    f"({', '.join(sorted(metrics))})"
                )
        if config.select.rule == "list":
            space = get_space(config.space.name, **config.space.options)
            for i, arch in enumerate(config.select.archs):
                at(f"select.archs[{i}]", lambda a=arch: space.from_string(a))

    def _run(self, ctx: RunContext) -> SelectOutput:
        from slimforge.search import SearchResult

        chosen: list[ChosenArch] = []
        for device in ctx.config.devices:
            outputs = ctx.output(search_stage(device.name))
            result = SearchResult.from_dict(json.loads(ctx.path(outputs.result).read_text(encoding="utf-8")))
            picks = _pick(ctx, device.name, result)
            if not picks:
                ctx.log(f"  {device.name}: nothing to select ({result.message})")
            for k, (label, e) in enumerate(picks):
                suffix = ctx.config.select.rule if len(picks) == 1 else f"{ctx.config.select.rule}{k}"
                chosen.append(
                    ChosenArch(
                        name=f"{device.name}-{suffix}",
                        device=device.name,
                        arch=e.arch,
                        genome=tuple(int(g) for g in e.genome),
                        rule=label,
                        objectives={k: float(v) for k, v in e.objectives.items()},
                        metrics={k: float(v) for k, v in e.metrics.items()},
                    )
                )
                ctx.log(f"  {device.name}: {label}: {e.arch}")
        if not chosen:
            raise StageError(
                "no feasible architecture on any device's front; relax search.constraints or raise search.budget"
            )
        return SelectOutput(tuple(chosen))
