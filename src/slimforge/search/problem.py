"""A search problem: a space, named objectives (all minimised), hard constraints and evaluators."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

from slimforge.errors import InvalidInputError, UnknownNameError, close_matches
from slimforge.search.constraint import Constraint
from slimforge.search.evaluation import Evaluation
from slimforge.search.evaluator import Evaluator, make_evaluator
from slimforge.spaces import Genome, SearchSpace, get_space

__all__ = ["Problem", "build_problem", "parse_names"]


class Problem:
    """Minimise ``objectives`` over ``space`` subject to ``constraints``.

    Each objective and constrained metric is looked up among the evaluators' metrics; an
    evaluator only runs when one of its metrics is needed.

    Args:
        space: the search space.
        objectives: metric names, all minimised (``error``, ``latency_ms``, ``energy_mj``, ``num_params``).
        evaluators: where metric values come from; the first evaluator naming a metric gives it.
        constraints: hard constraints, as :class:`Constraint` or strings like ``"latency_ms <= 5"``.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[str],
        evaluators: Sequence[Evaluator],
        constraints: Sequence[Constraint | str] = (),
    ) -> None:
        if isinstance(objectives, str):
            objectives = parse_names(objectives)
        self.space = space
        self.objectives = tuple(objectives)
        self.constraints = tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
        if not self.objectives:
            raise InvalidInputError("a problem needs at least one objective, e.g. 'error,latency_ms'")
        duplicated = sorted({o for o in self.objectives if self.objectives.count(o) > 1})
        if duplicated:
            raise InvalidInputError(f"objective(s) {', '.join(duplicated)} listed twice")
        provider: dict[str, Evaluator] = {}
        for ev in evaluators:
            for metric in ev.metrics:
                provider.setdefault(metric, ev)
        for name, role in [(o, "objective") for o in self.objectives] + [
            (c.metric, f"constraint '{c}'") for c in self.constraints
        ]:
            if name not in provider:
                hint = close_matches(name, provider)
                did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise UnknownNameError(
                    f"unknown {role} metric {name!r}{did_you_mean} "
                    f"(available here: {', '.join(sorted(provider)) or 'none'})"
                )
        needed = list(self.objectives) + [c.metric for c in self.constraints]
        # Only the evaluators that give a needed metric run; keep their given order.
        self.evaluators = tuple(ev for ev in evaluators if any(provider.get(m) is ev for m in needed))
        self._provider = provider

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """The constraints as strings, the keys of :attr:`Evaluation.constraints`."""
        return tuple(str(c) for c in self.constraints)

    def evaluate(self, genome: Genome) -> Evaluation:
        """Evaluate ``genome`` as given (the engine canonicalises it first)."""
        genome = self.space.validate(genome)
        start = time.perf_counter()
        metrics = self.metrics(genome)
        seconds = time.perf_counter() - start
        return self.make_evaluation(genome, metrics, seconds)

    def metrics(self, genome: Genome) -> dict[str, float]:
        """Every metric the needed evaluators give for ``genome`` (the first evaluator naming one wins)."""
        metrics: dict[str, float] = {}
        for ev in self.evaluators:
            for name, value in ev.evaluate(genome).items():
                metrics.setdefault(name, float(value))
        return metrics

    def make_evaluation(self, genome: Genome, metrics: dict[str, float], seconds: float) -> Evaluation:
        """Build the :class:`Evaluation` of ``genome`` from its metric values (also used on resume)."""
        objectives = {name: float(metrics[name]) for name in self.objectives}
        constraints = {str(c): float(metrics[c.metric]) for c in self.constraints}
        violation = sum(c.violation(constraints[str(c)]) for c in self.constraints)
        if any(math.isnan(v) for v in objectives.values()):
            violation = math.inf
        return Evaluation(
            genome=genome,
            arch=self.space.to_string(genome),
            objectives=objectives,
            constraints=constraints,
            violation=violation,
            feasible=violation == 0.0,
            seconds=seconds,
            metrics=metrics,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON description stored with a run; a resume must see the same one."""
        return {
            "space": self.space.name,
            "space_repr": repr(self.space),
            "objectives": list(self.objectives),
            "constraints": list(self.constraint_names),
            "evaluators": [ev.describe() for ev in self.evaluators],
        }

    def __repr__(self) -> str:
        cons = f", constraints={list(self.constraint_names)}" if self.constraints else ""
        return f"Problem({self.space!r}, objectives={list(self.objectives)}{cons})"


def parse_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """Split ``"error,latency_ms"`` into names (a sequence passes through)."""
    if isinstance(text, str):
        names = tuple(n.strip() for n in text.split(",") if n.strip())
    else:
        names = tuple(text)
    if not names:
        raise InvalidInputError(f"no names in {text!r}; give a comma-separated list like 'error,latency_ms'")
    return names


# Which evaluator gives which metric, for build_problem's choice of evaluators.
_ACCURACY_METRICS = ("error", "accuracy")
_DEVICE_METRICS = ("latency_ms", "energy_mj")


def build_problem(
    space: str | SearchSpace,
    objectives: str | Sequence[str],
    *,
    accuracy_table: str | os.PathLike | None = None,
    device: str | None = None,
    constraints: Sequence[str] = (),
    num_classes: int = 10,
) -> Problem:
    """A problem from the CLI's vocabulary.

    Args:
        space: a space or its registry name.
        objectives: ``"error,latency_ms"`` or a list of names.
        accuracy_table: CSV table giving ``error`` / ``accuracy``.
        device: a device spec; ``"table:FILE"`` reads ``latency_ms`` / ``energy_mj`` from a table.
        constraints: strings like ``"latency_ms <= 5"``.
        num_classes: classifier outputs for metrics that build the network (``num_params``).
    """
    space = get_space(space) if isinstance(space, str) else space
    names = parse_names(objectives)
    parsed = [Constraint.parse(c) for c in constraints]
    needed = set(names) | {c.metric for c in parsed}
    known = (*_ACCURACY_METRICS, *_DEVICE_METRICS, "num_params")
    for name in [*names, *(c.metric for c in parsed)]:
        if name not in known:
            hint = close_matches(name, known)
            did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise UnknownNameError(f"unknown metric {name!r}{did_you_mean} (known: {', '.join(known)})")
    evaluators: list[Evaluator] = []
    if needed & set(_ACCURACY_METRICS):
        if accuracy_table is None:
            raise InvalidInputError(
                f"{'/'.join(sorted(needed & set(_ACCURACY_METRICS)))} needs an accuracy source: "
                "give --accuracy-table FILE (a CSV with index,arch,accuracy)"
            )
        evaluators.append(make_evaluator("accuracy_table", space, path=accuracy_table))
    if needed & set(_DEVICE_METRICS):
        if device is None:
            raise InvalidInputError(
                f"{'/'.join(sorted(needed & set(_DEVICE_METRICS)))} needs a device: give --device table:FILE"
            )
        kind, _, arg = device.partition(":")
        if kind != "table" or not arg:
            raise UnknownNameError(
                f"unknown device {device!r}; this version reads device tables: write --device table:FILE"
            )
        evaluators.append(make_evaluator("device_table", space, path=arg))
    if "num_params" in needed:
        evaluators.append(make_evaluator("num_params", space, num_classes=num_classes))
    return Problem(space, names, evaluators, parsed)
