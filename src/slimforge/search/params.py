"""The ``num_params`` evaluator: parameters of the built standalone network."""

from __future__ import annotations

from typing import Any

from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["NumParamsEvaluator"]


class NumParamsEvaluator(Evaluator):
    """``num_params``: the number of parameters of ``space.build(genome, num_classes)``.

    Args:
        space: the search space.
        num_classes: classifier outputs of the built network.
    """

    def __init__(self, space: SearchSpace, num_classes: int = 10) -> None:
        super().__init__(space, ("num_params",))
        self.num_classes = num_classes

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        model = self.space.build(genome, self.num_classes)
        return {"num_params": float(sum(p.numel() for p in model.parameters()))}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_classes": self.num_classes}
