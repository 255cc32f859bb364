"""The Single-Path-One-Shot ShuffleNetV2 search space ``shufflenet`` (ShuffleSpace / ShuffleSpace+I).

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020:
a 3x3 conv stem (16 channels, stride 2, no max-pool), four stages of 4 / 4 / 8 / 4 searchable
layers at 64 / 160 / 320 / 640 channels (the first layer of each stage strides), a 1x1 conv to
1024 channels, global pooling and the classifier. Each layer is a ShuffleNetV2 unit (Ma et al.,
ECCV 2018) with a 3x3, 5x5 or 7x7 depthwise conv, or SPOS's Xception-style unit (three 3x3
depthwise convs). The co-design study's ShuffleSpace+I adds the identity in the non-stride
layers, which makes the depth variable.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.nn.shuffle import ShuffleV2Unit, ShuffleXceptionUnit
from slimforge.spaces._mbv2_shuffle_layerwise import (
    LayerSlot,
    LayerwiseSpace,
)
from slimforge.spaces._supernet import Supernet

__all__ = ["SHUFFLE_BLOCKS", "SHUFFLE_KERNELS", "ShuffleNetSpace"]

#: Token of each block choice, in choice order: ShuffleNetV2 unit k3 / k5 / k7, Xception unit k3.
SHUFFLE_BLOCKS: tuple[str, ...] = ("sh3", "sh5", "sh7", "xc3")
#: the depthwise kernel of each ShuffleNetV2 choice.
SHUFFLE_KERNELS = (3, 5, 7)
# SPOS at 1.0x: stage output channels; every stage's first layer has stride 2.
_STAGE_CHS = (64, 160, 320, 640)
_DEFAULT_DEPTHS = (4, 4, 8, 4)


class ShuffleNetSpace(LayerwiseSpace):
    """SPOS's layer-wise ShuffleNetV2 space: one gene per layer, ``sh3, sh5, sh7, xc3`` or ``id``.

    The identity (choice 4) is offered only in the non-stride layers; the first layer of each
    stage strides and widens, so its gene has 4 choices (``num_choices`` restricts it; nothing is
    remapped). With ``identity=False`` the space is SPOS's own (4^20 genomes). Strings list one
    token per layer joined by ``-``, e.g. ``sh3-xc3-id-sh7-...``. :meth:`canonical` moves the
    identities of a run of shape-keeping layers behind its blocks (the same network).

    Args:
        width: width multiplier; the stem and stage widths are ``make_divisible(c * width, 8)``,
            the last 1x1 conv stays at 1024 for ``width < 1``. Too small a width (every stage
            must be wider than the one before) raises InvalidInputError.
        resolution: the input side the space is meant for. At 64 or below the CIFAR adaptation
            applies: the stem does not stride, so the total stride is 16 instead of 32 (32x32 ->
            2x2 last feature map; the first layer of every stage still strides, since a unit that
            widens needs the two-branch stride-2 form). ``input_shape`` is for cost models.
        stage_depths: searchable layers per stage (four stages).
        identity: offer the identity choice (ShuffleSpace+I, the default); ``False`` gives SPOS's.
        dropout: dropout before the classifier (SPOS trains with 0.1).
        sharing: how the supernet shares weights: ``"elastic"`` (the default: the k3/k5/k7 units are
            slices of one 7x7 unit and the Xception unit shares their two pointwise convolutions;
            see :class:`slimforge.spaces._elastic.ElasticShuffleUnit`) or ``"separate"`` (SPOS: one
            unit per choice per layer, which does not train with random paths at CIFAR scale:
            BENCHMARKS.md, issue 16). Built networks are the same either way.

    :meth:`small` gives a scaled-down space for a CPU demo on CIFAR.
    """

    name = "shufflenet"

    def __init__(
        self,
        width: float = 1.0,
        resolution: int = 224,
        stage_depths: Sequence[int] = _DEFAULT_DEPTHS,
        identity: bool = True,
        dropout: float = 0.0,
        sharing: str = "elastic",
    ) -> None:
        self._set_options(width, resolution, 16, stage_depths, len(_STAGE_CHS), identity, dropout)
        self._set_sharing(sharing)
        self.block_tokens = SHUFFLE_BLOCKS
        self.stem_chs = make_divisible(16 * self.width, 8)
        self.num_features = make_divisible(1024 * max(1.0, self.width), 8)
        slots = []
        in_chs = self.stem_chs
        for stage, (chs, depth) in enumerate(zip(_STAGE_CHS, self.stage_depths)):
            out_chs = make_divisible(chs * self.width, 8)
            if out_chs <= in_chs:
                raise InvalidInputError(
                    f"shufflenet: width={width!r} is too small: stage {stage} would have {out_chs} channels, no more "
                    f"than its input's {in_chs}, and a stride-2 unit must widen; use width >= 0.25"
                )
            for i in range(depth):
                slots.append(LayerSlot(stage, in_chs, out_chs, 2 if i == 0 else 1))
                in_chs = out_chs
        self.slots = tuple(slots)
        self.last_chs = in_chs

    @classmethod
    def small(cls) -> ShuffleNetSpace:
        """A scaled-down CIFAR space for a ~10-minute CPU demo: width 0.5, 32x32, depths (2, 2, 4, 2)."""
        return cls(width=0.5, resolution=32, stage_depths=(2, 2, 4, 2))

    def _elastic_supernet(self, num_classes: int) -> Supernet:
        from slimforge.spaces._elastic import ElasticShuffleSupernet

        return ElasticShuffleSupernet(self, num_classes)

    def _make_stem(self) -> nn.Module:
        return ConvBnAct(3, self.stem_chs, 3, 1 if self.cifar else 2, act_layer="relu")

    def _make_block(self, choice: int, slot: LayerSlot) -> nn.Module:
        if choice < len(SHUFFLE_KERNELS):
            return ShuffleV2Unit(slot.in_chs, slot.out_chs, SHUFFLE_KERNELS[choice], slot.stride)
        return ShuffleXceptionUnit(slot.in_chs, slot.out_chs, 3, slot.stride)

    def _make_head(self) -> nn.Module:
        return ConvBnAct(self.last_chs, self.num_features, 1, act_layer="relu")

    def __repr__(self) -> str:
        # Always named: before the default became "elastic", a repr without it meant "separate".
        return self._describe("ShuffleNetSpace", f", sharing={self.sharing!r}")
