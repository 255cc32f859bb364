"""Analytic cost models: one figure of a network at an input shape, computed without running it on a device.

Each is a thin, named view of the profiler (:mod:`slimforge.hardware.profile` and friends), so a
search or a report can ask for ``"macs"`` or ``"energy_mj"`` by name from :data:`COST_MODELS`.
Measured and tabulated costs come from devices (:mod:`slimforge.hardware.devices`) and lookup
tables (:mod:`slimforge.hardware.lut`) instead. Every model takes an ``nn.Module`` or an
``.onnx`` file and leaves a module exactly as it was (rule 4).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.registry import Registry

__all__ = [
    "COST_MODELS",
    "AnalyticEnergy",
    "CostModel",
    "Macs",
    "ModelSize",
    "NumParams",
    "PeakActivation",
    "estimate_costs",
]

Model = nn.Module | str | Path


class CostModel(ABC):
    """One analytic cost (``name``, in ``unit``) of a model at an input shape.

    :meth:`estimate` validates the input and calls the :meth:`_estimate` hook.
    """

    #: the metric's name (as a search objective), with its unit in it.
    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""

    def estimate(self, model: Model, input_shape: Sequence[int] | str) -> float:
        """The cost of ``model`` (a module or an ``.onnx`` file) at ``input_shape`` (batch included)."""
        if not isinstance(model, (nn.Module, str, Path)):
            raise InvalidInputError(
                f"cost {self.name}: expected an nn.Module or an .onnx file, got {type(model).__name__}"
            )
        target = Path(model) if isinstance(model, str) else model  # a str is a file, never a zoo name here
        return float(self._estimate(target, parse_input_shape(input_shape)))

    @abstractmethod
    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        """Hook: the cost of a validated model at a parsed shape."""


def _num_params(model: nn.Module | Path, shape: tuple[int, ...]) -> int:
    if isinstance(model, nn.Module):
        return sum(p.numel() for p in model.parameters())
    from slimforge.hardware.onnx_graph import analyse_onnx

    return analyse_onnx(model, shape).num_params


class NumParams(CostModel):
    """Number of parameters (an ONNX file's weight initializers)."""

    name = "num_params"
    unit = "parameters"

    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        return _num_params(model, shape)


class Macs(CostModel):
    """Multiply-accumulates of one forward pass at the shape (FLOPs / 2 for conv and linear)."""

    name = "macs"
    unit = "MACs"

    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        from slimforge.hardware.flops import count_macs

        return count_macs(model, shape)


class PeakActivation(CostModel):
    """Peak activation memory in bytes over the execution order (Lin et al., MCUNet, NeurIPS 2020)."""

    name = "peak_act_bytes"
    unit = "bytes"

    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        from slimforge.hardware.memory import peak_activation_bytes

        return peak_activation_bytes(model, shape)


class ModelSize(CostModel):
    """Bytes to store the parameters at ``weight_bits`` bits each.

    Args:
        weight_bits: bits per weight (32 for float, 8 for INT8).
    """

    name = "model_size_bytes"
    unit = "bytes"

    def __init__(self, weight_bits: int = 32) -> None:
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not 1 <= weight_bits <= 64:
            raise InvalidInputError(f"weight_bits must be an integer between 1 and 64, got {weight_bits!r}")
        self.weight_bits = weight_bits

    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        from slimforge.hardware.profile import model_size_bytes

        return model_size_bytes(_num_params(model, shape), self.weight_bits)


class AnalyticEnergy(CostModel):
    """Energy per inference in millijoules, from MACs and bytes moved (:mod:`slimforge.hardware.energy`).

    Args:
        precision: ``fp32``, ``int8``, or None to read it from the model.
    """

    name = "energy_mj"
    unit = "mJ"

    def __init__(self, precision: str | None = None) -> None:
        from slimforge.hardware.energy import PRECISIONS

        if precision is not None and precision not in PRECISIONS:
            raise InvalidInputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.precision = precision

    def _estimate(self, model: nn.Module | Path, shape: tuple[int, ...]) -> float:
        from slimforge.hardware.energy import estimate_energy

        return estimate_energy(model, shape, precision=self.precision).energy_mj


#: analytic cost models by metric name.
COST_MODELS: Registry[type[CostModel]] = Registry("cost model")
COST_MODELS.register(NumParams.name, NumParams)
COST_MODELS.register(Macs.name, Macs)
COST_MODELS.register(PeakActivation.name, PeakActivation)
COST_MODELS.register(ModelSize.name, ModelSize)
COST_MODELS.register(AnalyticEnergy.name, AnalyticEnergy)


def estimate_costs(
    model: Model,
    input_shape: Sequence[int] | str,
    names: Sequence[str] = ("num_params", "macs"),
    **options: Any,
) -> dict[str, float]:
    """``{name: cost}`` for each named cost model (``options`` go to constructors that take them)."""
    out = {}
    for name in names:
        cls = COST_MODELS.get(name)
        accepted = {k: v for k, v in options.items() if k in inspect.signature(cls).parameters}
        out[name] = cls(**accepted).estimate(model, input_shape)
    return out
