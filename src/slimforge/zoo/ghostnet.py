"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020), Table 7.

GhostNet 1.0x: 5.2M params, 141M MACs at 224x224.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from slimforge.nn.ghost import GhostBottleneck
from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.zoo._mobile_common import MobileClassifier, check_model_args, init_weights

__all__ = ["ghostnet"]

# Table 7: (kernel, expanded chs, out_chs, SE, stride) per Ghost bottleneck.
_GHOSTNET = [
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
]


def ghostnet(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """GhostNet (Han et al., 2020): Ghost bottlenecks on a MobileNetV3-like layout.

    Args:
        num_classes: classifier outputs.
        width: the paper's width multiplier alpha (0.5, 1.0, 1.3 in the paper); channels are
            ``make_divisible(c * width, 4)`` as in the reference, except the 1280-wide layer before the
            classifier, which the reference does not scale.
        **kwargs: ``dropout`` (default 0.2 before the classifier, as in the paper), ``in_chs``
            (input channels, default 3).
    """
    opts = check_model_args("ghostnet", num_classes, width, kwargs, {"dropout": 0.2, "in_chs": 3})

    def chs(c: int) -> int:
        return make_divisible(c * width, 4)

    in_chs = chs(16)
    stem = ConvBnAct(opts["in_chs"], in_chs, 3, 2, act_layer="relu")
    blocks = []
    for k, exp, out, se, stride in _GHOSTNET:
        blocks.append(
            GhostBottleneck(
                in_chs, chs(out), k, stride, act_layer="relu", se_ratio=0.25 if se else 0.0, mid_chs=chs(exp)
            )
        )
        in_chs = chs(out)
    head_chs = chs(960)
    # The paper's 1x1 conv (with bias, no BN) after pooling is a linear layer on the pooled vector.
    num_features = 1280
    model = MobileClassifier(
        stem=stem,
        blocks=blocks,
        head=ConvBnAct(in_chs, head_chs, 1, act_layer="relu"),
        pre_logits=nn.Sequential(nn.Linear(head_chs, num_features), nn.ReLU(inplace=True)),
        num_features=num_features,
        num_classes=num_classes,
        dropout=opts["dropout"],
    )
    return init_weights(model)
