"""Ghost module and Ghost bottleneck (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020).

A Ghost module makes ``ceil(out/ratio)`` "intrinsic" feature maps with an ordinary conv and derives the
rest ("ghosts") from them with a cheap depthwise conv, cutting the cost of a pointwise conv by about
``ratio`` times.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct, make_divisible
from slimforge.nn.mbconv import _check_conv_args, _check_int, make_se

__all__ = ["GhostBottleneck", "GhostModule"]


class GhostModule(nn.Module):
    """Primary conv to ``ceil(out_chs/ratio)`` channels, cheap depthwise conv for the rest, concat, slice.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: primary conv kernel (1 in GhostNet).
        stride: primary conv stride.
        ratio: the paper's ``s``: one intrinsic map yields ``ratio - 1`` ghosts (2 in GhostNet).
        dw_size: the paper's ``d``: kernel of the cheap depthwise conv (3 in GhostNet).
        act_layer: activation of both convs; ``None`` for a linear module (second module of a bottleneck).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        ratio: int = 2,
        dw_size: int = 3,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        _check_conv_args(in_chs, out_chs, kernel_size, stride)
        _check_int("ratio", ratio, minimum=2)
        if _check_int("dw_size", dw_size) % 2 == 0:
            raise InvalidInputError(f"dw_size={dw_size!r} is even; pass an odd kernel size such as 3")
        init_chs = math.ceil(out_chs / ratio)
        self.out_chs = out_chs
        self.primary_conv = ConvBnAct(in_chs, init_chs, kernel_size, stride, act_layer=act_layer)
        self.cheap_operation = ConvBnAct(
            init_chs, init_chs * (ratio - 1), dw_size, 1, groups=init_chs, act_layer=act_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], dim=1)
        # ceil() may make one map too many when out_chs is not a multiple of ratio.
        return out[:, : self.out_chs]


class GhostBottleneck(nn.Module):
    """Ghost bottleneck: Ghost module (expand, ReLU), [depthwise kxk stride-2 conv-BN], [SE], Ghost
    module (project, linear), plus a shortcut.

    The shortcut is the identity when ``stride == 1`` and ``in_chs == out_chs``; otherwise, as in the
    paper's reference, a depthwise kxk conv-BN with the block's stride followed by a 1x1 conv-BN.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: kernel of the stride-2 depthwise conv and of the shortcut's depthwise conv.
        stride: 1 or 2.
        exp_ratio: expanded width as a multiple of ``in_chs``, rounded to a multiple of 4 as in GhostNet
            (ignored when ``mid_chs`` is given).
        act_layer: activation of the first Ghost module.
        se_ratio: SE bottleneck as a fraction of the expanded channels (0.25 in GhostNet); 0 disables SE.
        mid_chs: expanded width given directly (GhostNet's table lists it per block).
        se_gate_layer: SE gate (hard-sigmoid in GhostNet).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 3.0,
        act_layer: str | ActLayer | None = "relu",
        se_ratio: float = 0.0,
        mid_chs: int | None = None,
        se_gate_layer: str | ActLayer = "hsigmoid",
    ) -> None:
        super().__init__()
        _check_conv_args(in_chs, out_chs, kernel_size, stride)
        if stride not in (1, 2):
            raise InvalidInputError(f"stride={stride!r} is invalid for a Ghost bottleneck; pass 1 or 2")
        if mid_chs is None:
            if isinstance(exp_ratio, bool) or not isinstance(exp_ratio, (int, float)) or exp_ratio <= 0:
                raise InvalidInputError(
                    f"exp_ratio={exp_ratio!r} is invalid; pass a positive number such as 3 or 6"
                )
            mid_chs = make_divisible(in_chs * exp_ratio, 4)
        mid = _check_int("mid_chs", mid_chs)
        self.mid_chs = mid
        self.ghost1 = GhostModule(in_chs, mid, act_layer=act_layer)
        self.conv_dw: nn.Module = (
            ConvBnAct(mid, mid, kernel_size, stride, groups=mid, act_layer=None)
            if stride > 1
            else nn.Identity()
        )
        self.se = make_se(mid, mid, se_ratio, 4, "relu", se_gate_layer)
        self.ghost2 = GhostModule(mid, out_chs, act_layer=None)
        self.has_residual = stride == 1 and in_chs == out_chs
        self.shortcut: nn.Module = (
            nn.Identity()
            if self.has_residual
            else nn.Sequential(
                ConvBnAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, act_layer=None),
                ConvBnAct(in_chs, out_chs, 1, act_layer=None),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost2(self.se(self.conv_dw(self.ghost1(x))))
        return out + self.shortcut(x)
