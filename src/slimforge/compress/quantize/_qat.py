"""Quantization-aware training: fake-quantized INT8 weights and inputs, straight-through gradients.

Jacob et al. ("Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018): every conv/linear layer trains with its weights rounded to int8 per output
channel (symmetric, as ONNX Runtime quantizes them) and its input rounded to uint8 with a range
tracked by an exponential moving average. BN stays in the network while training: the deployed
model folds it into the conv, which scales each output channel by a constant, and symmetric
per-channel rounding is the same on the scaled weights (the grid scales with them), so training
against the unfolded weights' grid is exact, and BN keeps a 20-layer network stable at the
finetuning learning rate (folding first, without BN, diverged). Rounding has no useful gradient, so the backward pass treats it
as the identity inside the range and zero outside (the straight-through estimator, built into
``torch.fake_quantize_per_*_affine``). After training the layers are plain float layers again,
holding weights that survive INT8 rounding, and are exported through ONNX Runtime's QDQ writer.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FakeQuantConv2d", "FakeQuantLinear", "from_qat", "to_qat"]


class _InputObserver(nn.Module):
    """EMA of the input's min and max while training; fake-quantizes to uint8 with that range."""

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            lo, hi = x.detach().min(), x.detach().max()
            if not bool(self.seen):
                self.lo.copy_(lo)
                self.hi.copy_(hi)
                self.seen.fill_(True)
            else:
                self.lo.lerp_(lo, self.momentum)
                self.hi.lerp_(hi, self.momentum)
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 0.0)
        scale = max(hi - lo, 1e-8) / 255.0
        zero = round(-lo / scale)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def _fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    scale = (w.detach().abs().flatten(1).amax(1) / 127.0).clamp_min(1e-12)
    zero = torch.zeros(w.shape[0], dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


class FakeQuantConv2d(nn.Conv2d):
    """A Conv2d that trains with int8 per-channel weights and uint8 inputs (fake-quantized)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.observer(x), _fake_quant_weight(self.weight), self.bias)


class FakeQuantLinear(nn.Linear):
    """A Linear that trains with int8 per-channel weights and uint8 inputs (fake-quantized)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self.observer(x), _fake_quant_weight(self.weight), self.bias)


def to_qat(model: nn.Module) -> list[str]:
    """Swap every Conv2d/Linear for its fake-quantized twin (same weights), in place; returns the paths."""
    swapped = []
    for name, m in list(model.named_modules()):
        if type(m) is nn.Conv2d:
            m.__class__ = FakeQuantConv2d
        elif type(m) is nn.Linear:
            m.__class__ = FakeQuantLinear
        else:
            continue
        m.observer = _InputObserver()
        swapped.append(name)
    return swapped


def from_qat(model: nn.Module) -> None:
    """Turn fake-quantized layers back into plain Conv2d/Linear (weights kept), in place."""
    for m in model.modules():
        if isinstance(m, (FakeQuantConv2d, FakeQuantLinear)):
            del m.observer
            m.__class__ = nn.Conv2d if isinstance(m, FakeQuantConv2d) else nn.Linear
