"""The layer-wise MobileNetV2 search space ``mbv2`` (MobileSpace+I of the co-design study).

Skeleton: MobileNetV2's (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, Table 2): a 3x3 conv stem (32 channels, stride 2) and MobileNetV2's first block (MBConv
k3, expansion 1, 16 channels), both fixed; then six stages of searchable layers at 24 / 32 / 64 /
96 / 160 / 320 channels with strides 2 / 2 / 2 / 1 / 2 / 1 (the first layer of a stage strides);
then a 1x1 conv to 1280 channels, global pooling and the classifier. Every conv is followed by BN
and ReLU6, except the linear 1x1 projection of each MBConv.

Each searchable layer is an MBConv (no SE) with depthwise kernel k in {3, 5, 7} and expansion e in
{3, 6}, or the identity: 7 choices, as in ProxylessNAS's mobile space (Cai et al., ICLR 2019). The
default stage depths (4, 4, 4, 4, 3, 1) give the 20 searchable layers of the study; each is at
least MobileNetV2's (2, 3, 4, 3, 3, 1), so MobileNetV2 itself is in the space (all k3e6 with the
surplus layers set to the identity).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.nn.mbconv import MBConv
from slimforge.spaces._mbv2_shuffle_layerwise import (
    LayerSlot,
    LayerwiseSpace,
)
from slimforge.spaces._supernet import Supernet

__all__ = ["MBV2_BLOCKS", "MBV2Space"]

#: (kernel size, expansion) of each block choice, in choice order; the identity comes after them.
MBV2_BLOCKS: tuple[tuple[int, int], ...] = ((3, 3), (3, 6), (5, 3), (5, 6), (7, 3), (7, 6))
# MobileNetV2 Table 2 after its first block: (output channels, stride of the stage's first layer).
_STAGES: tuple[tuple[int, int], ...] = ((24, 2), (32, 2), (64, 2), (96, 1), (160, 2), (320, 1))
_DEFAULT_DEPTHS = (4, 4, 4, 4, 3, 1)


class MBV2Space(LayerwiseSpace):
    """Layer-wise MobileNetV2 space: one gene per searchable layer, MBConv k{3,5,7} x e{3,6} or identity.

    Choices of a gene, in order: ``k3e3, k3e6, k5e3, k5e6, k7e3, k7e6`` and then ``id`` (the
    identity). The identity is offered only in layers that keep the tensor's shape (stride 1 and
    equal input/output widths); the gene of any other layer has 6 choices (``num_choices``
    restricts it; nothing is remapped). At the default widths that is the first layer of every
    stage. A narrow CIFAR space can make a first layer shape-keeping (at width 0.35 and 32x32,
    16 and 24 channels both round to 8 and the 24-channel stage does not stride), and then it
    offers the identity too. Strings list one token per layer joined by ``-``, e.g.
    ``k3e6-k5e3-id-id-...``. :meth:`canonical` moves the identities of a run of shape-keeping
    layers behind its blocks (the same network).

    Args:
        width: width multiplier; every width is ``make_divisible(c * width, 8)`` except the last
            1x1 conv, kept at 1280 for ``width < 1`` as MobileNetV2 does.
        resolution: the input side the space is meant for. At 64 or below the common CIFAR
            adaptation applies: the stem and the first searchable stage (24 channels) do not
            stride, so the total stride is 8 instead of 32 (32x32 -> 4x4 last feature map).
            The networks take any input size (global pooling); ``input_shape`` is for cost models.
        stage_depths: searchable layers per stage (six stages).
        identity: offer the identity choice (MobileSpace+I); ``False`` fixes the depth.
        dropout: dropout before the classifier of built networks and of the supernet.
        sharing: how the supernet shares weights: ``"elastic"`` (the default; Once-for-All: every
            choice of a layer is a slice of its largest block, so randomly mixed paths train
            together; see :mod:`slimforge.spaces._elastic`) or ``"separate"`` (SPOS: one block per
            choice per layer). Separate weights do not train on this space: the layers that change
            shape give every choice its own output basis, the next layer's gradients from the
            different choices cancel, and randomly mixed paths stay near chance (BENCHMARKS.md,
            issue 16). Built networks are the same either way.

    :meth:`small` gives a scaled-down space for a CPU demo on CIFAR.
    """

    name = "mbv2"

    def __init__(
        self,
        width: float = 1.0,
        resolution: int = 224,
        stage_depths: Sequence[int] = _DEFAULT_DEPTHS,
        identity: bool = True,
        dropout: float = 0.0,
        sharing: str = "elastic",
    ) -> None:
        self._set_options(width, resolution, 8, stage_depths, len(_STAGES), identity, dropout)
        self._set_sharing(sharing)
        self.block_tokens = tuple(f"k{k}e{e}" for k, e in MBV2_BLOCKS)
        self.stem_chs = make_divisible(32 * self.width, 8)
        self.first_chs = make_divisible(16 * self.width, 8)
        self.num_features = make_divisible(1280 * max(1.0, self.width), 8)
        slots = []
        in_chs = self.first_chs
        for stage, ((chs, stride), depth) in enumerate(zip(_STAGES, self.stage_depths)):
            out_chs = make_divisible(chs * self.width, 8)
            if self.cifar and stage == 0:
                stride = 1
            for i in range(depth):
                slots.append(LayerSlot(stage, in_chs, out_chs, stride if i == 0 else 1))
                in_chs = out_chs
        self.slots = tuple(slots)
        self.last_chs = in_chs

    @classmethod
    def small(cls) -> MBV2Space:
        """A scaled-down CIFAR space for a ~10-minute CPU demo: width 0.35, 32x32, depths (2, 2, 2, 2, 2, 1)."""
        return cls(width=0.35, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1))

    def _elastic_supernet(self, num_classes: int) -> Supernet:
        from slimforge.spaces._elastic import ElasticMBV2Supernet

        return ElasticMBV2Supernet(self, num_classes)

    def _make_stem(self) -> nn.Module:
        return nn.Sequential(
            ConvBnAct(3, self.stem_chs, 3, 1 if self.cifar else 2, act_layer="relu6"),
            MBConv(self.stem_chs, self.first_chs, 3, 1, exp_ratio=1, act_layer="relu6"),
        )

    def _make_block(self, choice: int, slot: LayerSlot) -> nn.Module:
        kernel, expansion = MBV2_BLOCKS[choice]
        return MBConv(slot.in_chs, slot.out_chs, kernel, slot.stride, exp_ratio=expansion, act_layer="relu6")

    def _make_head(self) -> nn.Module:
        return ConvBnAct(self.last_chs, self.num_features, 1, act_layer="relu6")

    def __repr__(self) -> str:
        # Always named: before the default became "elastic", a repr without it meant "separate".
        return self._describe("MBV2Space", f", sharing={self.sharing!r}")
