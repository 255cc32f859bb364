"""Peak activation memory: the largest set of live tensors over the execution order.

As MCUNet defines it (Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices", NeurIPS 2020):
walk the operators in execution order, keep each activation alive from the step that produces it
to the last step that consumes it, and take the maximum over steps of the bytes alive. Weights are
not activations; the network input counts (alive from the first step) and so does the output
(alive to the last step).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

__all__ = ["LiveTensor", "peak_activation_bytes", "peak_live_bytes"]


@dataclass(frozen=True)
class LiveTensor:
    """One activation buffer: its size and the inclusive range of steps it is alive."""

    nbytes: int
    first_step: int
    last_step: int


def peak_live_bytes(tensors: Iterable[LiveTensor], num_steps: int) -> tuple[int, int]:
    """Return ``(peak bytes, step of the peak)`` over steps ``0 .. num_steps - 1``.

    A tensor counts at every step in ``[first_step, last_step]`` (clamped to the step range).
    """
    if num_steps <= 0:
        return 0, 0
    delta = [0] * (num_steps + 1)
    for t in tensors:
        first = min(max(t.first_step, 0), num_steps - 1)
        last = min(max(t.last_step, first), num_steps - 1)
        delta[first] += t.nbytes
        delta[last + 1] -= t.nbytes
    live, peak, peak_step = 0, 0, 0
    for step in range(num_steps):
        live += delta[step]
        if live > peak:
            peak, peak_step = live, step
    return peak, peak_step


def peak_activation_bytes(model_or_path: nn.Module | str | Path, input_shape: Sequence[int]) -> int:
    """Peak activation memory in bytes of one forward pass at ``input_shape``.

    Args:
        model_or_path: a PyTorch model (traced at the dispatcher level, so functional adds,
            concatenations and views count correctly) or a ``.onnx`` file (graph order, shapes
            from ONNX shape inference).
        input_shape: e.g. ``(1, 3, 224, 224)``; MCUNet reports batch 1.

    Raises:
        ModelFileError: for an ONNX graph whose tensor shapes cannot all be inferred.
    """
    from slimforge.hardware.input_shape import parse_input_shape

    shape = parse_input_shape(input_shape)
    if isinstance(model_or_path, nn.Module):
        from slimforge.hardware.torch_trace import trace_model

        return trace_model(model_or_path, shape).peak_act_bytes
    from slimforge.errors import ModelFileError
    from slimforge.hardware.onnx_graph import analyse_onnx

    analysis = analyse_onnx(model_or_path, shape)
    if analysis.peak_act_bytes is None:
        raise ModelFileError(
            f"peak activation memory of {model_or_path} is not available: {analysis.peak_note}"
        )
    return analysis.peak_act_bytes
