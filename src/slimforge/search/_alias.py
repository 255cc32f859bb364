"""An evaluator that also gives some of another evaluator's metrics under the problem's generic names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = ["AliasEvaluator"]


class AliasEvaluator(Evaluator):
    """``inner``'s metrics, plus ``alias`` = ``inner[source]`` for each ``alias: source`` of ``aliases``.

    It lets a problem ask for ``error`` whatever the accuracy source (a predictor gives
    ``predicted_error``): both names are recorded with each evaluation, and :meth:`describe` names
    the source, so a stored ``error`` is never mistaken for a measured one.

    Args:
        inner: the evaluator that computes the values.
        aliases: generic name -> the inner metric it copies.
    """

    def __init__(self, inner: Evaluator, aliases: Mapping[str, str]) -> None:
        super().__init__(inner.space, (*inner.metrics, *(a for a in aliases if a not in inner.metrics)))
        self.inner = inner
        self.aliases = dict(aliases)

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        return self._with_aliases(self.inner.evaluate(genome))

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        return [self._with_aliases(v) for v in self.inner.evaluate_many(genomes)]

    def _with_aliases(self, values: dict[str, float]) -> dict[str, float]:
        return {**values, **{alias: values[source] for alias, source in self.aliases.items()}}

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "metrics": list(self.metrics), "aliases": dict(self.aliases)}
