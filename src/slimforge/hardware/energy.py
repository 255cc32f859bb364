"""Energy per inference: the device table's figure where there is one, an analytic estimate otherwise.

The analytic model charges every multiply-accumulate and every byte moved to or from DRAM::

    energy = MACs x E_mac(precision) + (weight bytes + activation bytes) x E_dram_byte

with the 45 nm figures of Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014 (Fig. 1.1.9): a 32-bit float multiply (3.7 pJ) plus add (0.9 pJ) is 4.6 pJ, an 8-bit
integer multiply (0.2 pJ) plus add (0.03 pJ) is 0.23 pJ, and reading a 32-bit word from DRAM is
640 pJ, i.e. 160 pJ per byte. Weights are read once per inference; each MAC layer's input and
output activations are moved once (no on-chip reuse), which makes memory the larger term, as it
is on real devices. It is an order-of-magnitude model for ranking networks and for spaces
without a device table, not a substitute for a power meter: modern processes are several times
more efficient and caches remove much of the DRAM traffic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.io import JsonRecord

__all__ = ["HOROWITZ_45NM", "PRECISIONS", "EnergyConstants", "EnergyEstimate", "estimate_energy"]

PRECISIONS = ("fp32", "int8")
# ONNX operators whose activations are 8-bit integers (a QOperator-format model).
_INTEGER_OPS = frozenset({"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"})
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"}) | _INTEGER_OPS


@dataclass(frozen=True)
class EnergyConstants(JsonRecord):
    """Energy of one operation, in picojoules, and where the figures come from."""

    pj_per_mac_fp32: float
    pj_per_mac_int8: float
    pj_per_dram_byte: float
    source: str

    def pj_per_mac(self, precision: str) -> float:
        """Energy of one multiply-accumulate at ``precision`` (``fp32`` or ``int8``)."""
        return self.pj_per_mac_fp32 if precision == "fp32" else self.pj_per_mac_int8


#: Horowitz, ISSCC 2014, 45 nm: fp32 mult+add 3.7+0.9 pJ, int8 mult+add 0.2+0.03 pJ, DRAM 640 pJ / 32 bits.
HOROWITZ_45NM = EnergyConstants(
    pj_per_mac_fp32=4.6,
    pj_per_mac_int8=0.23,
    pj_per_dram_byte=160.0,
    source="Horowitz, ISSCC 2014, 45 nm",
)


@dataclass(frozen=True)
class EnergyEstimate(JsonRecord):
    """The analytic energy of one inference at ``input_shape`` and its two terms."""

    energy_mj: float
    compute_mj: float
    memory_mj: float
    macs: int
    weight_bytes: int
    activation_bytes: int
    precision: str
    input_shape: tuple[int, ...]
    constants: EnergyConstants

    @property
    def source(self) -> str:
        """How the figure was obtained, in a few words."""
        c = self.constants
        return (
            f"analytic {self.precision}: MACs x {c.pj_per_mac(self.precision):g} pJ + bytes moved x "
            f"{c.pj_per_dram_byte:g} pJ ({c.source}; an order-of-magnitude model)"
        )


def estimate_energy(
    model_or_path: nn.Module | str | Path,
    input_shape: Sequence[int] | str,
    *,
    precision: str | None = None,
    constants: EnergyConstants = HOROWITZ_45NM,
) -> EnergyEstimate:
    """Analytic energy of one inference (see the module docstring for the model and its sources).

    Args:
        model_or_path: a PyTorch model or an ``.onnx`` file.
        input_shape: batch included; the energy is for one run of that batch.
        precision: ``fp32`` or ``int8``; None reads it from the model (an ONNX graph with
            quantize/dequantize or integer operators is ``int8``, anything else ``fp32``).
        constants: the per-operation energies.

    Raises:
        ModelFileError: when the graph's shapes cannot be inferred (activation sizes unknown).
    """
    from slimforge.hardware.profile import profile_model

    if precision is not None and precision not in PRECISIONS:
        raise InvalidInputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    shape = parse_input_shape(input_shape)
    if isinstance(model_or_path, (str, Path)):
        model_or_path = Path(model_or_path)  # a str would be taken for a zoo model name
    probe = profile_model(model_or_path, shape, measure_latency=False, top_k=0)
    if precision is None:
        precision = "int8" if any(layer.type in _QDQ_OPS for layer in probe.layers) else "fp32"
    bits = 32 if precision == "fp32" else 8
    if probe.macs is None:
        raise ModelFileError(f"energy of {probe.model} is not available: its MACs cannot be counted")
    act_elements = 0
    for layer in probe.layers:
        if not layer.macs:
            continue
        if layer.input_act_bytes is None or layer.output_act_bytes is None:
            raise ModelFileError(
                f"energy of {probe.model} is not available: "
                f"the activation size of layer {layer.name} is unknown"
            )
        # The profile gives tensor bytes: float32 everywhere except in integer operators.
        per_element = 1 if layer.type in _INTEGER_OPS else 4
        act_elements += (layer.input_act_bytes + layer.output_act_bytes) // per_element
    # Static figures are for the profile's analysis batch; the energy is for the requested batch.
    scale = shape[0] / probe.analysis_shape[0]
    macs = round(probe.macs * scale)
    act_bytes = round(act_elements * scale * bits / 8)
    weight_bytes = probe.num_params * bits // 8
    compute_pj = macs * constants.pj_per_mac(precision)
    memory_pj = (weight_bytes + act_bytes) * constants.pj_per_dram_byte
    return EnergyEstimate(
        energy_mj=(compute_pj + memory_pj) * 1e-9,
        compute_mj=compute_pj * 1e-9,
        memory_mj=memory_pj * 1e-9,
        macs=macs,
        weight_bytes=weight_bytes,
        activation_bytes=act_bytes,
        precision=precision,
        input_shape=shape,
        constants=constants,
    )
