"""Dilated (atrous) convolution blocks that keep the spatial size at stride 1.

Dilation widens the receptive field at the cost of a kxk conv (Yu & Koltun, "Multi-Scale Context
Aggregation by Dilated Convolutions", ICLR 2016); the depthwise-separable form is DARTS's
``dil_conv`` (Liu et al., ICLR 2019).
"""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct

__all__ = ["DilatedConv"]


class DilatedConv(nn.Module):
    """Dilated kxk conv-BN-act, or a dilated depthwise kxk followed by a pointwise 1x1.

    Padding is ``(k - 1) // 2 * dilation``, so the output is ``ceil(H / stride)`` x ``ceil(W / stride)``.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: odd kernel size.
        stride: convolution stride.
        dilation: spacing between kernel taps (2 gives a 5x5 field from a 3x3 kernel).
        depthwise: use a dilated depthwise conv + 1x1 pointwise conv instead of a full kxk conv.
        act_layer: activation after the block (and between dw and pw when ``depthwise``).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 2,
        depthwise: bool = False,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InvalidInputError(f"DilatedConv: kernel_size={kernel_size} must be odd so the size is kept")
        if dilation < 1 or stride < 1:
            raise InvalidInputError(
                f"DilatedConv: dilation={dilation} and stride={stride} must be positive integers"
            )
        self.in_chs, self.out_chs, self.stride, self.dilation = in_chs, out_chs, stride, dilation
        if depthwise:
            self.conv: nn.Module = nn.Sequential(
                ConvBnAct(
                    in_chs, in_chs, kernel_size, stride, groups=in_chs, dilation=dilation, act_layer=act_layer
                ),
                ConvBnAct(in_chs, out_chs, 1, act_layer=act_layer),
            )
        else:
            self.conv = ConvBnAct(
                in_chs, out_chs, kernel_size, stride, dilation=dilation, act_layer=act_layer
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
