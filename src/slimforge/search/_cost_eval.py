"""Analytic cost evaluators: MACs, peak activation memory and model size of the built network.

Each is a thin view of a :data:`slimforge.hardware.COST_MODELS` entry applied to
``space.build(genome, num_classes)`` at the space's natural input shape (or the one given). The
figures depend only on the architecture, so each evaluator remembers them per genome in a small
dict of floats; the dict is left out of a pickle, so a copy sent to a worker starts empty.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import nn

from slimforge.hardware.cost import COST_MODELS
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.search._networks import build_seeded, check_num_classes, space_input_shape
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["MacsEvaluator", "ModelSizeEvaluator", "PeakMemoryEvaluator"]


class _CostEvaluator(Evaluator):
    """One analytic cost of the built network, as the metric :attr:`metric`; subclasses give :meth:`_cost`."""

    #: the metric this evaluator gives.
    metric: ClassVar[str] = ""
    _transient = ("_cache",)

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__(space, (self.metric,))
        self.num_classes = check_num_classes(num_classes)
        self._cache: dict[Genome, float] | None = None

    @abstractmethod
    def _cost(self, model: nn.Module) -> float:
        """The metric's value for the built network."""

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        if self._cache is None:
            self._cache = {}
        if genome not in self._cache:
            self._cache[genome] = float(self._cost(build_seeded(self.space, genome, self.num_classes)))
        return {self.metric: self._cache[genome]}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_classes": self.num_classes}


class _ShapedCostEvaluator(_CostEvaluator):
    #: the :data:`COST_MODELS` entry that computes the metric.
    cost_model: ClassVar[str] = ""

    def __init__(
        self, space: SearchSpace, input_shape: Sequence[int] | str | None = None, num_classes: int = 10
    ) -> None:
        super().__init__(space, num_classes)
        self.input_shape = space_input_shape(space, input_shape)

    def _cost(self, model: nn.Module) -> float:
        return COST_MODELS.get(self.cost_model)().estimate(model, self.input_shape)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "input_shape": format_shape(self.input_shape)}


class MacsEvaluator(_ShapedCostEvaluator):
    """``macs``: multiply-accumulates of one forward pass (FLOPs / 2 of conv and linear layers).

    Args:
        space: the search space.
        input_shape: batch included, e.g. ``"1x3x32x32"``; default the space's natural input.
        num_classes: classifier outputs of the built network.
    """

    metric = "macs"
    cost_model = "macs"


class PeakMemoryEvaluator(_ShapedCostEvaluator):
    """``peak_mem_bytes``: peak activation memory of one forward pass (Lin et al., MCUNet, NeurIPS 2020).

    Args:
        space: the search space.
        input_shape: batch included; default the space's natural input.
        num_classes: classifier outputs of the built network.
    """

    metric = "peak_mem_bytes"
    cost_model = "peak_act_bytes"


class ModelSizeEvaluator(_CostEvaluator):
    """``model_bytes``: bytes to store the built network's parameters at ``weight_bits`` bits each.

    Args:
        space: the search space.
        input_shape: taken (and checked) like the other cost evaluators' so that all three share one
            vocabulary; the size of the parameters does not depend on it.
        num_classes: classifier outputs of the built network.
        weight_bits: bits per weight (32 for float, 8 for INT8).
    """

    metric = "model_bytes"

    def __init__(
        self,
        space: SearchSpace,
        input_shape: Sequence[int] | str | None = None,
        num_classes: int = 10,
        weight_bits: int = 32,
    ) -> None:
        super().__init__(space, num_classes)
        if input_shape is not None:
            parse_input_shape(input_shape)
        COST_MODELS.get("model_size_bytes")(weight_bits=weight_bits)  # refuses a bad weight_bits now
        self.weight_bits = weight_bits

    def _cost(self, model: nn.Module) -> float:
        from slimforge.hardware.profile import model_size_bytes

        return model_size_bytes(sum(p.numel() for p in model.parameters()), self.weight_bits)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weight_bits": self.weight_bits}
