"""Basic layers shared by every block: conv-BN-activation, squeeze-excitation, activations.

All blocks in :mod:`slimforge.nn` use one argument vocabulary (after timm):
``in_chs, out_chs, kernel_size, stride, dilation, groups, exp_ratio, act_layer, se_ratio``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from slimforge.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "ConvBnAct",
    "SqueezeExcite",
    "get_act",
    "make_divisible",
]

ActLayer = Callable[[], nn.Module]

ACTIVATIONS: Registry[ActLayer] = Registry("activation")
ACTIVATIONS.register("relu", lambda: nn.ReLU(inplace=True))
ACTIVATIONS.register("relu6", lambda: nn.ReLU6(inplace=True))
ACTIVATIONS.register("hswish", lambda: nn.Hardswish(inplace=True))
ACTIVATIONS.register("hsigmoid", lambda: nn.Hardsigmoid(inplace=True))
ACTIVATIONS.register("swish", lambda: nn.SiLU(inplace=True))
ACTIVATIONS.register("sigmoid", nn.Sigmoid)
ACTIVATIONS.register("identity", nn.Identity)


def get_act(act: str | ActLayer | None) -> ActLayer:
    """Turn an activation name (or a layer factory, or None for identity) into a factory."""
    if act is None:
        return nn.Identity
    if isinstance(act, str):
        return ACTIVATIONS.get(act)
    return act


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count to a multiple of ``divisor`` without going below ``round_limit``×value.

    The rule every MobileNet-family paper's reference code uses for width multipliers.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


class ConvBnAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation, with 'same' padding for odd kernels.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        groups: convolution groups (``in_chs`` for depthwise).
        dilation: kernel dilation; padding grows with it so the spatial size only depends on stride.
        act_layer: activation name or factory; ``None`` for a linear (no activation) output.
        bias: add a conv bias (off by default since BN follows).
        norm: add BatchNorm (on by default).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        act_layer: str | ActLayer | None = "relu",
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias)
        ]
        if norm:
            layers.append(nn.BatchNorm2d(out_chs))
        layers.append(get_act(act_layer)())
        super().__init__(*layers)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): channel gating from a pooled descriptor.

    Args:
        chs: channels of the gated tensor.
        rd_chs: channels of the bottleneck; MobileNetV3 uses make_divisible(chs/4), EfficientNet
            uses in_chs/4 of the block input.
        act_layer: bottleneck activation.
        gate_layer: gate activation (sigmoid, or hard-sigmoid in MobileNetV3).
    """

    def __init__(
        self,
        chs: int,
        rd_chs: int,
        act_layer: str | ActLayer = "relu",
        gate_layer: str | ActLayer = "sigmoid",
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(chs, rd_chs, 1, bias=True)
        self.act = get_act(act_layer)()
        self.expand = nn.Conv2d(rd_chs, chs, 1, bias=True)
        self.gate = get_act(gate_layer)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s
