"""Evaluators: where objective and constraint values come from.

An evaluator gives named metrics (``error``, ``latency_ms``, ``num_params``, ...) for a genome.
They are created through :data:`EVALUATORS`, a registry of factories ``factory(space, **options)``,
so later sources (supernet accuracy, zero-cost proxies, predictors, measured latency, MACs, peak
memory) plug in under a new name without touching the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.spaces import Genome, SearchSpace

__all__ = ["EVALUATORS", "Evaluator", "make_evaluator"]


class Evaluator(ABC):
    """Gives the values of :attr:`metrics` for a genome of :attr:`space`.

    Evaluators are sent to worker processes by the process and Ray executors, so they hold
    plain data (arrays, dicts, paths), never open files or live models.
    """

    def __init__(self, space: SearchSpace, metrics: tuple[str, ...]) -> None:
        self.space = space
        self.metrics = tuple(metrics)

    def evaluate(self, genome: Genome) -> dict[str, float]:
        """Metric name -> value for a (validated) genome; every name in :attr:`metrics` is present."""
        values = self._evaluate(self.space.validate(genome))
        missing = [m for m in self.metrics if m not in values]
        if missing:
            raise InvalidInputError(f"{type(self).__name__} gave no value for {', '.join(missing)}")
        return values

    @abstractmethod
    def _evaluate(self, genome: Genome) -> dict[str, float]:
        """Compute the metrics of a validated genome."""

    def describe(self) -> dict[str, Any]:
        """A JSON description (kind and options) stored with a run, to refuse a mismatched resume."""
        return {"kind": type(self).__name__, "metrics": list(self.metrics)}


EvaluatorFactory = Callable[..., Evaluator]

EVALUATORS: Registry[EvaluatorFactory] = Registry("evaluator")
EVALUATORS.register("accuracy_table", "slimforge.search.tabular:TabularAccuracyEvaluator")
EVALUATORS.register("device_table", "slimforge.search.tabular:TabularDeviceEvaluator")
EVALUATORS.register("num_params", "slimforge.search.params:NumParamsEvaluator")


def make_evaluator(name: str, space: SearchSpace, **options: Any) -> Evaluator:
    """Create the evaluator registered as ``name`` for ``space``."""
    return EVALUATORS.get(name)(space, **options)
