"""MobileNetV1, MobileNetV2 and MobileNetV3 (Small, Large) as published.

- MobileNetV1: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
  Applications", 2017, Table 1 (4.2M params, 569M MACs at 224x224).
- MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
  Table 2 (3.4M params, 300M MACs).
- MobileNetV3: Howard et al., "Searching for MobileNetV3", ICCV 2019, Tables 1 and 2 (Large 5.4M/219M,
  Small 2.5M/56M).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from slimforge.nn.layers import ConvBnAct, get_act, make_divisible
from slimforge.nn.mbconv import DepthwiseSeparableConv, MBConv
from slimforge.zoo._mobile_common import MobileClassifier, check_model_args, init_weights

__all__ = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]

# MobileNetV1 body, Table 1: (out_chs, stride) per depthwise-separable block.
_V1_BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)

# MobileNetV2 body, Table 2: (expansion t, out_chs c, repeats n, first stride s).
_V2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]

# MobileNetV3 bodies, Tables 1 and 2: (kernel, expanded chs, out_chs, SE, activation, stride).
_V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
_V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]


def mobilenet_v1(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MobileNetV1 (Howard et al., 2017): a 3x3 stem and 13 depthwise-separable blocks.

    Args:
        num_classes: classifier outputs.
        width: the paper's width multiplier alpha; channels are ``max(int(c * width), 8)`` as in the
            reference (TF-slim) code.
        **kwargs: ``dropout`` (default 0: the paper uses little regularisation for small models),
            ``in_chs`` (input channels, default 3).
    """
    opts = check_model_args("mobilenet_v1", num_classes, width, kwargs, {"dropout": 0.0, "in_chs": 3})

    def chs(c: int) -> int:
        return max(int(c * width), 8)

    in_chs = chs(32)
    blocks = []
    for out, stride in _V1_BLOCKS:
        blocks.append(DepthwiseSeparableConv(in_chs, chs(out), 3, stride, act_layer="relu"))
        in_chs = chs(out)
    model = MobileClassifier(
        stem=ConvBnAct(opts["in_chs"], chs(32), 3, 2, act_layer="relu"),
        blocks=blocks,
        head=nn.Identity(),
        pre_logits=nn.Identity(),
        num_features=in_chs,
        num_classes=num_classes,
        dropout=opts["dropout"],
    )
    return init_weights(model)


def mobilenet_v2(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MobileNetV2 (Sandler et al., 2018): inverted residuals with linear bottlenecks, ReLU6.

    Args:
        num_classes: classifier outputs.
        width: width multiplier; channels are ``make_divisible(c * width, 8)``, except the last 1x1 conv
            which stays at 1280 for ``width < 1`` (the paper: "we apply the width multiplier to all
            layers except the very last convolutional layer", which helps small models).
        **kwargs: ``dropout`` (default 0.2 before the classifier, as in the reference training setup),
            ``in_chs`` (input channels, default 3), ``small_input`` (default False: the common CIFAR
            adaptation, the stem and the first stride-2 stage do not stride, total stride 8 instead
            of 32, so a 32x32 image ends as a 4x4 map; :func:`mobilenet_v2_cifar`).
    """
    opts = check_model_args(
        "mobilenet_v2", num_classes, width, kwargs, {"dropout": 0.2, "in_chs": 3, "small_input": False}
    )
    small = bool(opts["small_input"])
    in_chs = make_divisible(32 * width, 8)
    stem = ConvBnAct(opts["in_chs"], in_chs, 3, 1 if small else 2, act_layer="relu6")
    blocks = []
    for k, (t, c, n, s) in enumerate(_V2_STAGES):
        if small and k == 1:  # the first stride-2 stage (24 channels)
            s = 1
        out = make_divisible(c * width, 8)
        for i in range(n):
            blocks.append(MBConv(in_chs, out, 3, s if i == 0 else 1, exp_ratio=t, act_layer="relu6"))
            in_chs = out
    num_features = make_divisible(1280 * max(1.0, width), 8)
    model = MobileClassifier(
        stem=stem,
        blocks=blocks,
        head=ConvBnAct(in_chs, num_features, 1, act_layer="relu6"),
        pre_logits=nn.Identity(),
        num_features=num_features,
        num_classes=num_classes,
        dropout=opts["dropout"],
    )
    return init_weights(model)


def mobilenet_v2_cifar(num_classes: int = 10, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MobileNetV2 for 32x32 inputs: :func:`mobilenet_v2` with ``small_input=True`` (total stride 8)."""
    return mobilenet_v2(num_classes, width, **{**kwargs, "small_input": True})


def mobilenet_v3_large(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MobileNetV3-Large (Howard et al., 2019, Table 1).

    Args:
        num_classes: classifier outputs.
        width: width multiplier; channels are ``make_divisible(c * width, 8)`` and each expanded width is
            the table's expansion ratio times the scaled input, rounded the same way, as in the reference
            code. The layer before the classifier (1280 wide; 1024 in Small) is not narrowed for
            ``width < 1``, as in MobileNetV2.
        **kwargs: ``dropout`` (default 0.2 before the classifier, as in the paper), ``in_chs``
            (input channels, default 3).
    """
    return _mobilenet_v3("mobilenet_v3_large", _V3_LARGE, 960, 1280, num_classes, width, kwargs)


def mobilenet_v3_small(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MobileNetV3-Small (Howard et al., 2019, Table 2).

    Table 2 marks SE on the last 1x1 conv (576 channels); we leave it out, as common implementations
    do: the network without it has the paper's Table 3 figures (2.5M params, 56M MACs).

    Args:
        num_classes: classifier outputs.
        width: width multiplier, as for :func:`mobilenet_v3_large`.
        **kwargs: ``dropout`` (default 0.2), ``in_chs`` (input channels, default 3).
    """
    return _mobilenet_v3("mobilenet_v3_small", _V3_SMALL, 576, 1024, num_classes, width, kwargs)


def _mobilenet_v3(
    name: str,
    table: list[tuple[int, int, int, bool, str, int]],
    head_chs: int,
    pre_logits_chs: int,
    num_classes: int,
    width: float,
    kwargs: dict[str, Any],
) -> nn.Module:
    opts = check_model_args(name, num_classes, width, kwargs, {"dropout": 0.2, "in_chs": 3})

    def chs(c: int) -> int:
        return make_divisible(c * width, 8)

    in_chs, table_in_chs = chs(16), 16
    stem = ConvBnAct(opts["in_chs"], in_chs, 3, 2, act_layer="hswish")
    blocks = []
    for k, exp, out, se, act, stride in table:
        blocks.append(
            MBConv(
                in_chs,
                chs(out),
                k,
                stride,
                # The reference expands the *scaled* input by the table's ratio, then rounds to 8; this is
                # what makes the published 0.75x figures (rounding chs(exp) instead gives 10% fewer MACs).
                exp_ratio=exp / table_in_chs,
                act_layer=act,
                # MobileNetV3's SE: bottleneck of a quarter of the expanded width, ReLU, hard-sigmoid gate.
                se_ratio=0.25 if se else 0.0,
                se_base="mid",
                se_divisor=8,
                se_act_layer="relu",
                se_gate_layer="hsigmoid",
            )
        )
        in_chs, table_in_chs = chs(out), out
    head = ConvBnAct(in_chs, chs(head_chs), 1, act_layer="hswish")
    # The paper's 1x1 conv without BN after pooling is a linear layer on the pooled vector.
    # As for V2, the reference keeps the last layer full width below 1x (its "finegrain classification
    # mode"); the published 0.75x Large figures (4.0M params, 155M MACs) are of that network.
    num_features = make_divisible(pre_logits_chs * max(1.0, width), 8)
    pre_logits = nn.Sequential(nn.Linear(chs(head_chs), num_features), get_act("hswish")())
    model = MobileClassifier(stem, blocks, head, pre_logits, num_features, num_classes, opts["dropout"])
    return init_weights(model)
