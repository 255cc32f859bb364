"""ShuffleNetV1 (Zhang et al., CVPR 2018) and ShuffleNetV2 (Ma et al., ECCV 2018) for ImageNet-style inputs.

Both end in adaptive global pooling, so they run at any input of 32x32 or more.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.nn.shuffle import ShuffleV1Unit, ShuffleV2Unit
from slimforge.zoo._classic_common import PooledClassifier, check_common, check_width_choice

__all__ = ["ShuffleNet", "shufflenet_v1", "shufflenet_v2"]

# ShuffleNetV1 Table 1: output channels of stages 2-4 at 1x for each group count.
_V1_STAGE_CHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# The paper's scale factors run from 0.25x (Table 2) to 2x (Table 3).
_V1_WIDTH_RANGE = (0.25, 2.0)
# ShuffleNetV2 Table 5: output channels of stages 2-4 and of conv5 for each published width.
_V2_STAGE_CHS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
_REPEATS = (4, 8, 4)


class ShuffleNet(PooledClassifier):
    """Stem (3x3 s2 conv + 3x3 s2 max-pool), three stages of shuffle units, optional 1x1 conv, classifier.

    Built by :func:`shufflenet_v1` and :func:`shufflenet_v2`; the first unit of each stage strides.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: nn.Sequential,
        head: nn.Module,
        feat_chs: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head
        self._set_classifier(feat_chs, num_classes, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _stem(out_chs: int) -> nn.Sequential:
    return nn.Sequential(ConvBnAct(3, out_chs, 3, 2), nn.MaxPool2d(3, 2, 1))


def shufflenet_v1(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """ShuffleNetV1 (Zhang et al., 2018, Table 1): ``width``x ShuffleNet with ``groups`` groups.

    Args:
        num_classes: classifier outputs.
        width: the paper's scale factor s, 0.25 to 2.0. Stage widths are rounded to multiples of
            ``4 * groups`` (and the stem to a multiple of ``groups``) so every grouped conv splits evenly.
        **kwargs: ``groups`` (1, 2, 3, 4 or 8; default 3) and ``dropout`` before the classifier (default 0).
    """
    check_common("shufflenet_v1", num_classes, width, kwargs, known=("groups", "dropout"))
    groups = kwargs.get("groups", 3)
    dropout = float(kwargs.get("dropout", 0.0))
    if isinstance(groups, bool) or not isinstance(groups, int) or groups not in _V1_STAGE_CHS:
        raise InvalidInputError(
            f"shufflenet_v1 has no groups={groups!r}; use one of {', '.join(map(str, _V1_STAGE_CHS))}"
        )
    lo, hi = _V1_WIDTH_RANGE
    if not (lo <= width <= hi or math.isclose(width, lo) or math.isclose(width, hi)):
        raise InvalidInputError(
            f"shufflenet_v1 has no width={width!r}; the paper's scale factors run from {lo} to {hi} (e.g. 0.5, 1.0, 2.0)"
        )
    stem_chs = make_divisible(24 * width, groups)
    stage_chs = [make_divisible(c * width, 4 * groups) for c in _V1_STAGE_CHS[groups]]
    units: list[nn.Module] = []
    in_chs = stem_chs
    for stage, (out_chs, repeats) in enumerate(zip(stage_chs, _REPEATS)):
        for i in range(repeats):
            units.append(
                ShuffleV1Unit(
                    in_chs,
                    out_chs,
                    stride=2 if i == 0 else 1,
                    groups=groups,
                    # The paper does not group the first pointwise conv of stage 2: its input is the narrow stem.
                    group_first_pw=not (stage == 0 and i == 0),
                )
            )
            in_chs = out_chs
    return ShuffleNet(_stem(stem_chs), nn.Sequential(*units), nn.Identity(), in_chs, num_classes, dropout)


def shufflenet_v2(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """ShuffleNetV2 (Ma et al., 2018, Table 5) at one of the published widths 0.5, 1.0, 1.5, 2.0.

    Args:
        num_classes: classifier outputs.
        width: 0.5, 1.0, 1.5 or 2.0 (the paper's channel table has no other widths).
        **kwargs: ``dropout`` before the classifier (default 0; the authors use 0.2 at 2.0x).
    """
    check_common("shufflenet_v2", num_classes, width, kwargs, known=("dropout",))
    check_width_choice("shufflenet_v2", width, _V2_STAGE_CHS)
    dropout = float(kwargs.get("dropout", 0.0))
    *stage_chs, last_chs = next(v for k, v in _V2_STAGE_CHS.items() if math.isclose(k, width))
    units: list[nn.Module] = []
    in_chs = 24
    for out_chs, repeats in zip(stage_chs, _REPEATS):
        for i in range(repeats):
            units.append(ShuffleV2Unit(in_chs, out_chs, 3, stride=2 if i == 0 else 1))
            in_chs = out_chs
    head = ConvBnAct(in_chs, last_chs, 1)
    return ShuffleNet(_stem(24), nn.Sequential(*units), head, last_chs, num_classes, dropout)
