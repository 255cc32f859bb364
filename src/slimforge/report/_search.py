"""One device's search as the report sees it: every evaluation in order, the front, the chosen models.

A finished search is read from its ``result.json``; an unfinished one (stage running or failed) from
the evaluations its ``store.sqlite`` holds so far, so a report of a live run shows the search so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from slimforge.io import STORE_FILE, RunStore, StoreError, search_stage
from slimforge.report._run import RunData, SectionMissing, read_json, stage_note
from slimforge.search import Evaluation, SearchResult, feasible_front

__all__ = ["SearchView", "load_search"]


@dataclass(frozen=True)
class SearchView:
    """The evaluations of one device's search, its feasible front and its summary.

    ``partial`` is None for a finished search, else the sentence saying how far it got.
    ``chosen`` maps architecture strings to the names the ``select`` stage gave them.
    """

    device: str
    objectives: tuple[str, ...]
    constraints: tuple[str, ...]
    evaluations: tuple[Evaluation, ...]
    front: tuple[Evaluation, ...]
    summary: dict[str, Any]
    partial: str | None = None
    chosen: dict[str, list[str]] = field(default_factory=dict)


def load_search(run: RunData, device: str) -> SearchView:
    """The search against ``device``; raises :class:`SectionMissing` when it has nothing to show."""
    stage = run.stage(search_stage(device))
    outputs = stage.outputs if stage is not None else {}
    if stage is not None and stage.status == "done":
        view = _finished(run, device, outputs)
    else:
        view = _unfinished(run, device, stage_note(search_stage(device), stage))
    chosen: dict[str, list[str]] = {}
    select = run.stage("select")
    if select is not None and select.status == "done":
        for c in select.outputs.get("chosen", []):
            if c.get("device") == device and c.get("arch"):
                chosen.setdefault(str(c["arch"]), []).append(str(c.get("name", c["arch"])))
    extra = {k: outputs[k] for k in ("spec", "accuracy_source", "cost_source") if k in outputs}
    summary = {**view.summary, **extra}
    return replace(view, summary=summary, chosen=chosen)


def _finished(run: RunData, device: str, outputs: dict[str, Any]) -> SearchView:
    relative = outputs.get("result") or f"search/{device}/result.json"
    data = read_json(run.path(relative), f"the search result of device {device!r}")
    try:
        result = SearchResult.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise SectionMissing(
            f"the search result {relative} is not a slimforge search result ({exc!r})"
        ) from None
    summary = {
        "algorithm": result.algorithm,
        "seed": result.seed,
        "budget": result.budget,
        "evaluations": result.num_evaluations,
        "feasible": result.num_feasible,
        "front": len(result.front),
        "stop_reason": result.stop_reason,
        "wall_s": result.wall_s,
    }
    return SearchView(
        device=device,
        objectives=result.objectives,
        constraints=result.constraints,
        evaluations=result.evaluations,
        front=result.front,
        summary=summary,
    )


def _unfinished(run: RunData, device: str, note: str) -> SearchView:
    path = run.path(f"search/{device}/{STORE_FILE}")
    if not path.is_file():
        raise SectionMissing(note)
    try:
        with RunStore(path, create=False) as store:
            records = store.evaluations()
            described = store.get_meta("search") or {}
    except StoreError as exc:
        raise SectionMissing(f"{note}; its store cannot be read: {exc}") from None
    if not records:
        raise SectionMissing(f"{note}; no candidate evaluated yet")
    problem = described.get("problem") or {}
    objectives = tuple(problem.get("objectives") or records[0].objectives)
    evaluations = tuple(
        Evaluation(
            genome=r.genome,
            arch=r.key,
            objectives={k: r.objectives.get(k, float("nan")) for k in objectives},
            constraints=r.constraints,
            violation=float(r.meta.get("violation", 0.0)),
            feasible=r.feasible,
            seconds=r.seconds,
            metrics=dict(r.meta.get("metrics") or {}),
        )
        for r in records
    )
    front = feasible_front(evaluations)
    summary = {
        "algorithm": described.get("algorithm", "-"),
        "seed": described.get("seed", "-"),
        "evaluations": len(evaluations),
        "feasible": sum(e.feasible for e in evaluations),
        "front": len(front),
    }
    return SearchView(
        device=device,
        objectives=objectives,
        constraints=tuple(problem.get("constraints") or ()),
        evaluations=evaluations,
        front=front,
        summary=summary,
        partial=f"{note}: showing the {len(evaluations)} evaluations stored so far",
    )
