"""An elastic (weight-entangled) supernet for the ``mbv2`` space, after Once-for-All (Cai et al., ICLR 2020).

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

from slimforge.nn.layers import make_divisible
from slimforge.spaces._base import Genome
from slimforge.spaces._mbv2_shuffle_layerwise import LayerwiseFrame

__all__ = ["ElasticMBConv", "ElasticMBV2Supernet"]


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
        self.conv_dw = nn.Conv2d(mid, mid, self.max_kernel, stride, self.max_kernel // 2, groups=mid, bias=False)
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


class ElasticMBV2Supernet(LayerwiseFrame):
    """The ``mbv2`` supernet with one :class:`ElasticMBConv` per searchable layer (``sharing="elastic"``)."""

    def __init__(self, space: object, num_classes: int) -> None:
        from slimforge.spaces.mbv2 import MBV2_BLOCKS

        super().__init__(space, num_classes)  # type: ignore[arg-type]
        self.blocks = MBV2_BLOCKS
        kernels = sorted({k for k, _ in MBV2_BLOCKS})
        ratios = sorted({e for _, e in MBV2_BLOCKS})
        self.stem = space._make_stem()  # type: ignore[attr-defined]
        self.layers = nn.ModuleList(
            ElasticMBConv(s.in_chs, s.out_chs, s.stride, kernels, ratios) for s in space.slots  # type: ignore[attr-defined]
        )
        self._set_head(space, num_classes)  # type: ignore[arg-type]

    def weighted_choices(self) -> list[tuple[int, ...]]:
        """Every block choice; the identity (no weights) is left out."""
        return [tuple(range(len(self.blocks))) for _ in self.layers]

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The (sliced) batch-norm layers of every searchable layer."""
        return [m for m in self.layers.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _run_choice(self, layer: int, choice: int, x: torch.Tensor) -> torch.Tensor:
        kernel, exp_ratio = self.blocks[choice]
        return self.layers[layer](x, kernel, exp_ratio)

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        self._load_fixed_into(net)
        identity = self.space.identity_choice  # type: ignore[attr-defined]
        for block, layer, choice in zip(net.layers, self.layers, genome):
            if choice != identity:
                kernel, exp_ratio = self.blocks[choice]
                layer.load_into(block, kernel, exp_ratio)
