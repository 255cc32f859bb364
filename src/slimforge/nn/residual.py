"""ResNet's basic residual block (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016)."""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct, get_act

__all__ = ["BasicBlock"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut, then the activation.

    The shortcut is the identity when the shape is kept and a 1x1 conv + BN projection (the paper's
    option B) when the stride or the width changes. CIFAR ResNet-20 in the paper used zero-padding
    shortcuts (option A); we use the projection everywhere, which adds ~1% parameters there.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        stride: stride of the first 3x3 conv (and of the projection).
        act_layer: activation after the first conv and after the addition.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        if stride < 1 or min(in_chs, out_chs) < 1:
            raise InvalidInputError(
                f"BasicBlock(in_chs={in_chs}, out_chs={out_chs}, stride={stride}): use positive integers"
            )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.conv1 = ConvBnAct(in_chs, out_chs, 3, stride, act_layer=act_layer)
        self.conv2 = ConvBnAct(out_chs, out_chs, 3, act_layer=None)
        self.shortcut = (
            ConvBnAct(in_chs, out_chs, 1, stride, act_layer=None)
            if stride != 1 or in_chs != out_chs
            else nn.Identity()
        )
        self.act = get_act(act_layer)()

    def zero_init_last(self) -> None:
        """Zero the last BN scale so the residual branch starts at zero (Goyal et al., 2017, §5.1)."""
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))
