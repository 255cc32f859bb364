"""Elastic (weight-entangled) supernets for the ``mbv2`` and ``shufflenet`` spaces, after Once-for-All (Cai et al., ICLR 2020).

In the separate-weights supernet (SPOS) each block choice of a layer has its own weights, so the
layers that change shape (the first of each stage, no residual) give every choice its own output
basis, and the next layer must learn to read them all. With a few hundred steps on a small data set
that never happens: randomly mixed paths stay at chance accuracy while the paths trained as a
whole learn. Here every choice of a layer is a slice of one largest block: an expansion ratio
takes the first channels of the expansion, a kernel size the centre of the largest depthwise
kernel, and all choices write through the same projection, so every path speaks one basis.
Batch-norm layers are shared and sliced too; their statistics are re-estimated per sub-network
before evaluation (:func:`slimforge.supernet.recalibrate_bn`), as OFA does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.nn.shuffle import channel_shuffle
from slimforge.spaces._base import Genome
from slimforge.spaces._mbv2_shuffle_layerwise import LayerwiseFrame

__all__ = ["ElasticMBConv", "ElasticMBV2Supernet", "ElasticShuffleSupernet", "ElasticShuffleUnit"]


def _sliced_bn(bn: nn.BatchNorm2d, x: torch.Tensor, n: int) -> torch.Tensor:
    """``bn`` on the first ``n`` channels, updating the running statistics of those channels only.

    It follows ``nn.BatchNorm2d``'s own rule for the update, including the cumulative average
    (``momentum=None``) that batch-norm re-calibration switches on.
    """
    momentum = 0.0
    if bn.training:
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    return F.batch_norm(
        x,
        bn.running_mean[:n],
        bn.running_var[:n],
        bn.weight[:n],
        bn.bias[:n],
        bn.training,
        momentum,
        bn.eps,
    )


class ElasticMBConv(nn.Module):
    """One searchable ``mbv2`` layer holding its largest MBConv; each (kernel, expansion) choice is a slice.

    Args:
        in_chs, out_chs, stride: the layer's shape.
        kernel_sizes: the depthwise kernel sizes offered (odd); the largest is stored.
        exp_ratios: the expansion ratios offered; the largest is stored.
    """

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, kernel_sizes: Sequence[int], exp_ratios: Sequence[int]
    ) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.max_kernel = max(kernel_sizes)
        self.mid = {e: make_divisible(in_chs * e, 8) for e in exp_ratios}
        mid = max(self.mid.values())
        self.conv_pw = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(mid)
        self.conv_dw = nn.Conv2d(
            mid, mid, self.max_kernel, stride, self.max_kernel // 2, groups=mid, bias=False
        )
        self.bn_dw = nn.BatchNorm2d(mid)
        self.conv_pwl = nn.Conv2d(mid, out_chs, 1, bias=False)
        self.bn_pwl = nn.BatchNorm2d(out_chs)
        self.has_residual = stride == 1 and in_chs == out_chs

    def _dw_weight(self, mid: int, kernel: int) -> torch.Tensor:
        lo = (self.max_kernel - kernel) // 2
        return self.conv_dw.weight[:mid, :, lo : lo + kernel, lo : lo + kernel]

    def forward(self, x: torch.Tensor, kernel: int, exp_ratio: int) -> torch.Tensor:  # type: ignore[override]
        mid = self.mid[exp_ratio]
        y = F.relu6(_sliced_bn(self.bn_pw, F.conv2d(x, self.conv_pw.weight[:mid]), mid))
        y = F.conv2d(y, self._dw_weight(mid, kernel), None, self.stride, kernel // 2, 1, mid)
        y = F.relu6(_sliced_bn(self.bn_dw, y, mid))
        y = _sliced_bn(self.bn_pwl, F.conv2d(y, self.conv_pwl.weight[:, :mid]), self.out_chs)
        return x + y if self.has_residual else y

    @torch.no_grad()
    def load_into(self, block: nn.Module, kernel: int, exp_ratio: int) -> None:
        """Copy the choice's slice (weights and BN statistics) into a standalone :class:`~slimforge.nn.MBConv`."""
        mid = self.mid[exp_ratio]
        pairs = (
            (block.conv_pw[0], self.conv_pw.weight[:mid], block.conv_pw[1], self.bn_pw, mid),
            (block.conv_dw[0], self._dw_weight(mid, kernel), block.conv_dw[1], self.bn_dw, mid),
            (block.conv_pwl[0], self.conv_pwl.weight[:, :mid], block.conv_pwl[1], self.bn_pwl, self.out_chs),
        )
        for conv, weight, bn, source, n in pairs:
            conv.weight.copy_(weight)
            bn.weight.copy_(source.weight[:n])
            bn.bias.copy_(source.bias[:n])
            bn.running_mean.copy_(source.running_mean[:n])
            bn.running_var.copy_(source.running_var[:n])
            bn.num_batches_tracked.copy_(source.num_batches_tracked)


class _ElasticFrame(LayerwiseFrame):
    """What the elastic supernets share: one entangled module per searchable layer in ``self.layers``,
    called as ``layer(x, *args)`` and copied out as ``layer.load_into(block, *args)`` with the
    arguments :attr:`choice_args` gives each block choice."""

    #: per block choice, the arguments its layers are run and copied with.
    choice_args: tuple[tuple[object, ...], ...]

    def weighted_choices(self) -> list[tuple[int, ...]]:
        """Every block choice; the identity (no weights) is left out."""
        return [tuple(range(len(self.choice_args))) for _ in self.layers]

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The (shared or sliced) batch-norm layers of every searchable layer."""
        return [m for m in self.layers.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _run_choice(self, layer: int, choice: int, x: torch.Tensor) -> torch.Tensor:
        return self.layers[layer](x, *self.choice_args[choice])

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        self._load_fixed_into(net)
        identity = self.space.identity_choice
        for block, layer, choice in zip(net.layers, self.layers, genome):
            if choice != identity:
                layer.load_into(block, *self.choice_args[choice])


class ElasticMBV2Supernet(_ElasticFrame):
    """The ``mbv2`` supernet with one :class:`ElasticMBConv` per searchable layer (``sharing="elastic"``)."""

    def __init__(self, space: object, num_classes: int) -> None:
        from slimforge.spaces.mbv2 import MBV2_BLOCKS

        super().__init__(space, num_classes)  # type: ignore[arg-type]
        #: (kernel, expansion) of each block choice.
        self.choice_args = MBV2_BLOCKS
        kernels = sorted({k for k, _ in MBV2_BLOCKS})
        ratios = sorted({e for _, e in MBV2_BLOCKS})
        self.stem = space._make_stem()  # type: ignore[attr-defined]
        self.layers = nn.ModuleList(
            ElasticMBConv(s.in_chs, s.out_chs, s.stride, kernels, ratios)
            for s in space.slots  # type: ignore[attr-defined]
        )
        self._set_head(space, num_classes)  # type: ignore[arg-type]


def _sliced_dw(layer: nn.Sequential, x: torch.Tensor, kernel: int) -> torch.Tensor:
    """A depthwise :class:`~slimforge.nn.layers.ConvBnAct` run with the centre ``kernel`` x ``kernel``
    of its (largest) kernel; its BN and activation as they are (the channels do not change)."""
    conv = layer[0]
    lo = (conv.kernel_size[0] - kernel) // 2
    weight = conv.weight[:, :, lo : lo + kernel, lo : lo + kernel]
    y = F.conv2d(x, weight, None, conv.stride, kernel // 2, 1, conv.groups)
    return layer[2](layer[1](y))


@torch.no_grad()
def _copy_sliced_dw(target: nn.Sequential, source: nn.Sequential, kernel: int) -> None:
    lo = (source[0].kernel_size[0] - kernel) // 2
    target[0].weight.copy_(source[0].weight[:, :, lo : lo + kernel, lo : lo + kernel])
    target[1].load_state_dict(source[1].state_dict())


class ElasticShuffleUnit(nn.Module):
    """One searchable ``shufflenet`` layer whose block choices share weights wherever shapes allow.

    The ShuffleNetV2 choices (k3 / k5 / k7) are one unit with a 7x7 depthwise kernel, each using its
    centre; the stride-2 projection branch's depthwise kernel is sliced the same way (3x3 for the
    Xception choice). The Xception choice writes through the same two pointwise convolutions as the
    ShuffleNetV2 choices (into the main branch's width, and out of it) and owns only its three
    depthwise convolutions and its middle pointwise one, so every choice hands the next layer one
    feature basis. Batch norms are shared too; a sub-network's statistics are re-estimated before
    it is scored, as for the elastic ``mbv2`` supernet.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, kernel_sizes: Sequence[int]) -> None:
        super().__init__()
        self.stride = stride
        branch_in, branch_out = (in_chs // 2, out_chs // 2) if stride == 1 else (in_chs, out_chs - in_chs)
        mid = out_chs // 2
        k = max(kernel_sizes)
        self.proj = (
            nn.Sequential(
                ConvBnAct(in_chs, in_chs, k, stride, groups=in_chs, act_layer=None),
                ConvBnAct(in_chs, in_chs, 1),
            )
            if stride == 2
            else None
        )
        self.pw_in = ConvBnAct(branch_in, mid, 1)
        self.dw = ConvBnAct(mid, mid, k, stride, groups=mid, act_layer=None)
        self.pw_out = ConvBnAct(mid, branch_out, 1)
        # The Xception choice's own layers: dw (stride) before pw_in, then dw, pw, dw before pw_out.
        self.x_dw1 = ConvBnAct(branch_in, branch_in, 3, stride, groups=branch_in, act_layer=None)
        self.x_dw2 = ConvBnAct(mid, mid, 3, groups=mid, act_layer=None)
        self.x_pw2 = ConvBnAct(mid, mid, 1)
        self.x_dw3 = ConvBnAct(mid, mid, 3, groups=mid, act_layer=None)

    def forward(self, x: torch.Tensor, kernel: int | None) -> torch.Tensor:  # type: ignore[override]
        """The unit with a ShuffleNetV2 branch of depthwise ``kernel``, or the Xception branch (None)."""
        if self.proj is None:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.proj[1](_sliced_dw(self.proj[0], x, kernel or 3))
        if kernel is None:
            y = self.x_dw3(self.x_pw2(self.x_dw2(self.pw_in(self.x_dw1(x)))))
        else:
            y = _sliced_dw(self.dw, self.pw_in(x), kernel)
        return channel_shuffle(torch.cat([keep, self.pw_out(y)], dim=1), 2)

    @torch.no_grad()
    def load_into(self, block: nn.Module, kernel: int | None) -> None:
        """Copy the choice's weights and BN statistics into a standalone ShuffleV2 / Xception unit."""
        if self.proj is not None:
            _copy_sliced_dw(block.proj[0], self.proj[0], kernel or 3)
            block.proj[1].load_state_dict(self.proj[1].state_dict())
        if kernel is None:
            order = (self.x_dw1, self.pw_in, self.x_dw2, self.x_pw2, self.x_dw3, self.pw_out)
            for target, source in zip(block.main, order):
                target.load_state_dict(source.state_dict())
            return
        block.main[0].load_state_dict(self.pw_in.state_dict())
        _copy_sliced_dw(block.main[1], self.dw, kernel)
        block.main[2].load_state_dict(self.pw_out.state_dict())


class ElasticShuffleSupernet(_ElasticFrame):
    """The ``shufflenet`` supernet with one :class:`ElasticShuffleUnit` per searchable layer (``sharing="elastic"``)."""

    def __init__(self, space: object, num_classes: int) -> None:
        from slimforge.spaces.shufflenet import SHUFFLE_KERNELS

        super().__init__(space, num_classes)  # type: ignore[arg-type]
        #: the depthwise kernel of each block choice; None is the Xception unit.
        self.choice_args = (*((k,) for k in SHUFFLE_KERNELS), (None,))
        self.stem = space._make_stem()  # type: ignore[attr-defined]
        self.layers = nn.ModuleList(
            ElasticShuffleUnit(s.in_chs, s.out_chs, s.stride, SHUFFLE_KERNELS)
            for s in space.slots  # type: ignore[attr-defined]
        )
        self._set_head(space, num_classes)  # type: ignore[arg-type]
