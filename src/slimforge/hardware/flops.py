"""MACs and FLOPs of a model at one input shape.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which counts convolutions,
matrix products (linear layers) and attention, at 2 FLOPs per multiply-accumulate; so for the
CNNs here MACs = FLOPs / 2 exactly. BatchNorm, activations, pooling and elementwise ops are not
counted, as in the MACs figures the papers publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from slimforge.errors import ModelFileError
from slimforge.hardware.input_shape import check_input_shape, parse_input_shape, shape_error
from slimforge.nn import evaluating

__all__ = ["MACS_NOTE", "count_flops", "count_macs"]

MACS_NOTE = (
    "MACs = FLOPs/2 for conv and linear (FLOPs from torch.utils.flop_counter.FlopCounterMode, "
    "which counts conv, matmul/linear and attention; BatchNorm, activations, pooling and elementwise ops are not counted)"
)


def count_flops(model: nn.Module, input_shape: Sequence[int] | str = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass of ``model`` (eval mode) at ``input_shape``, by FlopCounterMode."""
    shape = parse_input_shape(input_shape)
    check_input_shape(model, shape)
    x = torch.zeros(shape)
    counter = FlopCounterMode(display=False)
    with evaluating(model), torch.no_grad(), counter:
        try:
            model(x)
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise shape_error(model, shape, exc) from None
    return int(counter.get_total_flops())


def count_macs(
    model_or_path: nn.Module | str | Path, input_shape: Sequence[int] | str = (1, 3, 224, 224)
) -> int:
    """Multiply-accumulates of one forward pass at ``input_shape``.

    Args:
        model_or_path: a PyTorch model (MACs = FlopCounterMode FLOPs / 2) or a ``.onnx`` file
            (Conv, Gemm and MatMul nodes counted from shapes inferred by ONNX).
        input_shape: e.g. ``(1, 3, 224, 224)``.
    """
    shape = parse_input_shape(input_shape)
    if isinstance(model_or_path, nn.Module):
        return count_flops(model_or_path, shape) // 2
    from slimforge.hardware.onnx_graph import analyse_onnx

    analysis = analyse_onnx(model_or_path, shape)
    if analysis.macs is None:
        reason = next((n for n in analysis.notes if n.startswith("MACs")), "unknown shapes")
        raise ModelFileError(f"MACs of {model_or_path} are not available: {reason}")
    return analysis.macs
