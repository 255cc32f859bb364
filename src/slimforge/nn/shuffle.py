"""Group convolution + channel shuffle blocks: ShuffleNetV1, ShuffleNetV2 and SPOS's Xception unit.

- ShuffleNetV1 unit: Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network
  for Mobile Devices", CVPR 2018 (Fig. 2).
- ShuffleNetV2 unit: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
  Design", ECCV 2018 (Fig. 3c/d).
- Xception-style unit: Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
  Sampling", ECCV 2020 (the ``choice_x`` block of its search space).

The stride-2 ShuffleNetV2 / Xception units follow the authors' release: the shortcut branch keeps
``in_chs`` channels (dw kxk + pw 1x1) and the main branch produces ``out_chs - in_chs``, so stage
widths need not be even multiples of the input width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct, get_act

# (in_chs, mid_chs, out_chs, kernel_size, stride, act_layer) -> the main branch of a split-shuffle unit
BranchBuilder = Callable[..., nn.Module]

__all__ = [
    "ChannelShuffle",
    "ShuffleV1Unit",
    "ShuffleV2Unit",
    "ShuffleXceptionUnit",
    "channel_shuffle",
]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups so the next group conv sees every group (ShuffleNet §3.1).

    Channel ``g * (C/groups) + i`` moves to ``i * groups + g``. The shuffle with ``C // groups``
    groups is its inverse.

    Args:
        x: an NCHW tensor whose channel count is divisible by ``groups``.
        groups: the number of groups to interleave.
    """
    if x.dim() != 4:
        raise InvalidInputError(f"channel_shuffle needs an NCHW tensor, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if groups < 1 or c % groups:
        raise InvalidInputError(
            f"channel_shuffle: {c} channels cannot be split into groups={groups}; "
            "use a group count that divides the channel count"
        )
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ChannelShuffle(nn.Module):
    """:func:`channel_shuffle` as a parameter-free layer."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise InvalidInputError(f"stride={stride} is not supported; use 1 or 2")


def _check_kernel(kernel_size: int) -> None:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InvalidInputError(f"kernel_size={kernel_size} must be an odd positive integer (e.g. 3, 5, 7)")


class ShuffleV1Unit(nn.Module):
    """ShuffleNetV1 unit: group 1x1 → shuffle → dw kxk → group 1x1, added to (or concatenated with) a shortcut.

    Stride 1 adds the identity; stride 2 concatenates a 3x3 average-pooled shortcut, so the branch
    produces ``out_chs - in_chs`` channels. As in the paper, BN follows every conv, ReLU only the
    first pointwise conv and the merge, and the dw conv is linear.

    Args:
        in_chs: input channels.
        out_chs: output channels (the concatenation's width for stride 2).
        kernel_size: depthwise kernel size.
        stride: 1 (residual add) or 2 (concat with pooled input).
        groups: groups of the pointwise convolutions.
        mid_chs: bottleneck channels; the paper uses ``out_chs // 4``.
        group_first_pw: group the first pointwise conv; the paper does not for the first unit of
            stage 2, whose input (24 channels) is too narrow to split.
        act_layer: activation after the first pointwise conv and after the merge.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 3,
        mid_chs: int | None = None,
        group_first_pw: bool = True,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        _check_stride(stride)
        _check_kernel(kernel_size)
        mid_chs = out_chs // 4 if mid_chs is None else mid_chs
        branch_chs = out_chs if stride == 1 else out_chs - in_chs
        first_groups = groups if group_first_pw else 1
        if stride == 1 and in_chs != out_chs:
            raise InvalidInputError(
                f"ShuffleV1Unit with stride 1 adds its input, so in_chs ({in_chs}) must equal out_chs ({out_chs}); "
                "use stride=2 to change the width"
            )
        if branch_chs < 1:
            raise InvalidInputError(
                f"ShuffleV1Unit with stride 2 concatenates its input, so out_chs ({out_chs}) must exceed "
                f"in_chs ({in_chs})"
            )
        for name, chs, g in (("in_chs", in_chs, first_groups), ("mid_chs", mid_chs, groups)):
            if chs < 1 or chs % g:
                raise InvalidInputError(f"ShuffleV1Unit: {name}={chs} is not divisible by groups={g}")
        if branch_chs % groups:
            raise InvalidInputError(
                f"ShuffleV1Unit: the branch output ({branch_chs} channels) is not divisible by groups={groups}; "
                f"choose out_chs so that out_chs{' - in_chs' if stride == 2 else ''} is a multiple of {groups}"
            )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.pw1 = ConvBnAct(in_chs, mid_chs, 1, groups=first_groups, act_layer=act_layer)
        # Shuffling only matters after a grouped conv: an ungrouped one already mixes every channel.
        self.shuffle = ChannelShuffle(groups) if first_groups > 1 else nn.Identity()
        self.dw = ConvBnAct(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs, act_layer=None)
        self.pw2 = ConvBnAct(mid_chs, branch_chs, 1, groups=groups, act_layer=None)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.act = get_act(act_layer)()

    def zero_init_last(self) -> None:
        """Zero the last BN scale of a residual (stride-1) unit so it starts as the identity.

        Goyal et al., 2017, §5.1. A stride-2 unit concatenates rather than adds, so it is left alone.
        """
        if self.stride == 1:
            nn.init.zeros_(self.pw2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw2(self.dw(self.shuffle(self.pw1(x))))
        if self.stride == 1:
            return self.act(out + x)
        return self.act(torch.cat([self.shortcut(x), out], dim=1))


class _SplitShuffleUnit(nn.Module):
    """Shared frame of ShuffleNetV2-style units: split (or copy), one branch, concat, shuffle by 2.

    Stride 1: half the channels pass unchanged, the other half go through the main branch.
    Stride 2: the whole input feeds a projection branch (dw kxk s2 + pw, ``in_chs`` out) and the
    main branch (``out_chs - in_chs`` out). Subclasses name the builder of the main branch in
    ``main_branch``; the constructor (and its signature) is this one.
    """

    main_branch: BranchBuilder

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        mid_chs: int | None = None,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        _check_stride(stride)
        _check_kernel(kernel_size)
        name = type(self).__name__
        if stride == 1:
            if in_chs != out_chs or in_chs % 2:
                raise InvalidInputError(
                    f"{name} with stride 1 splits its input in two halves, so in_chs ({in_chs}) must equal "
                    f"out_chs ({out_chs}) and be even; use stride=2 to change the width"
                )
            branch_in, branch_out = in_chs // 2, out_chs // 2
        else:
            if out_chs <= in_chs:
                raise InvalidInputError(
                    f"{name} with stride 2 keeps in_chs ({in_chs}) channels in its projection branch, so "
                    f"out_chs ({out_chs}) must exceed it"
                )
            branch_in, branch_out = in_chs, out_chs - in_chs
        mid_chs = out_chs // 2 if mid_chs is None else mid_chs
        if mid_chs < 1:
            raise InvalidInputError(f"{name}: mid_chs={mid_chs} must be positive")
        self.in_chs, self.out_chs, self.stride, self.kernel_size = in_chs, out_chs, stride, kernel_size
        self.main = type(self).main_branch(branch_in, mid_chs, branch_out, kernel_size, stride, act_layer)
        self.proj = (
            nn.Sequential(
                ConvBnAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, act_layer=None),
                ConvBnAct(in_chs, in_chs, 1, act_layer=act_layer),
            )
            if stride == 2
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.proj(x)
        return channel_shuffle(torch.cat([keep, self.main(x)], dim=1), 2)


def _v2_branch(
    in_chs: int, mid_chs: int, out_chs: int, kernel_size: int, stride: int, act_layer: str | ActLayer | None
) -> nn.Module:
    return nn.Sequential(
        ConvBnAct(in_chs, mid_chs, 1, act_layer=act_layer),
        ConvBnAct(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs, act_layer=None),
        ConvBnAct(mid_chs, out_chs, 1, act_layer=act_layer),
    )


def _xception_branch(
    in_chs: int, mid_chs: int, out_chs: int, kernel_size: int, stride: int, act_layer: str | ActLayer | None
) -> nn.Module:
    return nn.Sequential(
        ConvBnAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, act_layer=None),
        ConvBnAct(in_chs, mid_chs, 1, act_layer=act_layer),
        ConvBnAct(mid_chs, mid_chs, kernel_size, groups=mid_chs, act_layer=None),
        ConvBnAct(mid_chs, mid_chs, 1, act_layer=act_layer),
        ConvBnAct(mid_chs, mid_chs, kernel_size, groups=mid_chs, act_layer=None),
        ConvBnAct(mid_chs, out_chs, 1, act_layer=act_layer),
    )


class ShuffleV2Unit(_SplitShuffleUnit):
    """ShuffleNetV2 unit (Ma et al., 2018): the main branch is pw 1x1 → dw kxk → pw 1x1.

    The kernel size is free (3/5/7 in the SPOS search space, Guo et al. 2020).

    Args:
        in_chs: input channels (even, and equal to ``out_chs`` for stride 1).
        out_chs: output channels.
        kernel_size: depthwise kernel size.
        stride: 1 (channel split) or 2 (two branches, halves the spatial size).
        mid_chs: main-branch width; ``out_chs // 2`` by default, as in the authors' release.
        act_layer: activation after the pointwise convs (the dw conv is linear).
    """

    main_branch = staticmethod(_v2_branch)


class ShuffleXceptionUnit(_SplitShuffleUnit):
    """SPOS's Xception-style unit (Guo et al., 2020): three (dw kxk → pw 1x1) pairs in the main branch.

    Same split / projection / shuffle frame as :class:`ShuffleV2Unit`; only the first dw conv strides.

    Args:
        in_chs: input channels (even, and equal to ``out_chs`` for stride 1).
        out_chs: output channels.
        kernel_size: depthwise kernel size (3 in SPOS).
        stride: 1 or 2.
        mid_chs: main-branch width; ``out_chs // 2`` by default.
        act_layer: activation after each pointwise conv.
    """

    main_branch = staticmethod(_xception_branch)
