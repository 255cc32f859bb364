"""Shift convolution (Wu et al., "Shift: A Zero FLOP, Zero Parameter Alternative to Spatial
Convolutions", CVPR 2018): a spatial shift per channel group replaces the kxk filter, and a 1x1
conv mixes channels."""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct

__all__ = ["Shift", "ShiftConv", "shift_offsets"]


def shift_offsets(kernel_size: int) -> list[tuple[int, int]]:
    """The (dy, dx) shifts of a kxk kernel's positions, centre (0, 0) first."""
    r = kernel_size // 2
    others = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    return [(0, 0), *others]


class Shift(nn.Module):
    """Zero-parameter, zero-FLOP spatial shift: channel group ``i`` moves by offset ``i`` of a kxk window.

    Channels are split evenly into ``kernel_size**2`` groups (Wu et al. §3.2); the remainder stays in
    the centre group, which is not shifted. Output pixel ``(y, x)`` of a group with offset
    ``(dy, dx)`` reads input pixel ``(y + dy, x + dx)``, zero outside the image. Built from one
    zero pad and slices so it exports to ONNX as Pad/Slice/Concat.

    Args:
        chs: channels of the shifted tensor.
        kernel_size: odd size of the shift neighbourhood (3 gives 8 directions plus the centre).
    """

    def __init__(self, chs: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InvalidInputError(
                f"Shift: kernel_size={kernel_size} must be an odd positive integer (e.g. 3)"
            )
        if chs < 1:
            raise InvalidInputError(f"Shift: chs={chs} must be positive")
        self.chs, self.kernel_size = chs, kernel_size
        offsets = shift_offsets(kernel_size)
        per_group = chs // len(offsets)
        sizes = [chs - per_group * (len(offsets) - 1)] + [per_group] * (len(offsets) - 1)
        # (offset, channel count) pairs; empty groups (fewer channels than directions) are dropped.
        self.groups = [(off, n) for off, n in zip(offsets, sizes) if n > 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.chs:
            raise InvalidInputError(f"Shift expects {self.chs} channels, got {x.shape[1]}")
        r = self.kernel_size // 2
        h, w = x.shape[-2:]
        padded = nn.functional.pad(x, (r, r, r, r))
        parts, start = [], 0
        for (dy, dx), n in self.groups:
            parts.append(padded[:, start : start + n, r + dy : r + dy + h, r + dx : r + dx + w])
            start += n
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return f"chs={self.chs}, kernel_size={self.kernel_size}"


class ShiftConv(nn.Module):
    """Shift followed by a 1x1 conv-BN-act: a kxk receptive field at the cost of a pointwise conv.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: odd shift neighbourhood.
        stride: stride of the 1x1 conv (sampling the shifted map, as strided kxk convs do).
        act_layer: activation after the 1x1 conv; ``None`` for linear.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        act_layer: str | ActLayer | None = "relu",
    ) -> None:
        super().__init__()
        if stride < 1:
            raise InvalidInputError(f"ShiftConv: stride={stride} must be a positive integer")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.shift = Shift(in_chs, kernel_size)
        self.conv = ConvBnAct(in_chs, out_chs, 1, stride, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.shift(x))
