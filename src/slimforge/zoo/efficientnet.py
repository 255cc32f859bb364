"""EfficientNet-B0 and MnasNet-A1 as published.

- EfficientNet-B0: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
  Networks", ICML 2019, Table 1 (5.3M params, 390M MACs at 224x224).
- MnasNet-A1: Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019,
  Figure 7(a) (3.9M params, 312M MACs).

Both are stacks of MBConv blocks whose SE bottleneck is a quarter of the block's *input* channels.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from slimforge.nn.layers import ConvBnAct, make_divisible
from slimforge.nn.mbconv import DepthwiseSeparableConv, MBConv
from slimforge.zoo._mobile_common import MobileClassifier, check_model_args, init_weights

__all__ = ["efficientnet_b0", "mnasnet_a1"]

# Stages after the stem: (expansion, kernel, first stride, repeats, out_chs, SE ratio).
# EfficientNet-B0, Table 1 (every block has SE 0.25).
_B0_STAGES = [
    (1, 3, 1, 1, 16, 0.25),
    (6, 3, 2, 2, 24, 0.25),
    (6, 5, 2, 2, 40, 0.25),
    (6, 3, 2, 3, 80, 0.25),
    (6, 5, 1, 3, 112, 0.25),
    (6, 5, 2, 4, 192, 0.25),
    (6, 3, 1, 1, 320, 0.25),
]
# MnasNet-A1, Figure 7(a): SepConv, then MBConv6/MBConv3 stages, SE only where the figure shows it.
_A1_STAGES = [
    (1, 3, 1, 1, 16, 0.0),
    (6, 3, 2, 2, 24, 0.0),
    (3, 5, 2, 3, 40, 0.25),
    (6, 3, 2, 4, 80, 0.0),
    (6, 3, 1, 2, 112, 0.25),
    (6, 5, 2, 3, 160, 0.25),
    (6, 3, 1, 1, 320, 0.0),
]


def efficientnet_b0(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """EfficientNet-B0 (Tan & Le, 2019): MBConv with SE and swish, found by MnasNet-style search.

    Args:
        num_classes: classifier outputs.
        width: the compound-scaling width coefficient; channels are ``make_divisible(c * width, 8)``
            (the reference ``round_filters``). Depth and resolution are not scaled here.
        **kwargs: ``dropout`` (default 0.2 before the classifier, as for B0 in the paper),
            ``drop_path_rate`` (stochastic depth, default 0.2 = the paper's survival probability 0.8,
            grown linearly with block depth as in the reference), ``in_chs`` (input channels, default 3).
    """
    opts = check_model_args(
        "efficientnet_b0", num_classes, width, kwargs, {"dropout": 0.2, "drop_path_rate": 0.2, "in_chs": 3}
    )
    return _build("swish", _B0_STAGES, num_classes, width, opts)


def mnasnet_a1(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """MnasNet-A1 (Tan et al., 2019): the searched mobile model, ReLU with SE in three stages.

    Args:
        num_classes: classifier outputs.
        width: the paper's depth multiplier (a channel multiplier); channels are
            ``make_divisible(c * width, 8)`` as in the reference.
        **kwargs: ``dropout`` (default 0.2 before the classifier, as in the reference), ``in_chs``
            (input channels, default 3).
    """
    opts = check_model_args("mnasnet_a1", num_classes, width, kwargs, {"dropout": 0.2, "in_chs": 3})
    return _build("relu", _A1_STAGES, num_classes, width, {**opts, "drop_path_rate": 0.0})


def _build(
    act: str, stages: list[tuple[int, int, int, int, int, float]], num_classes: int, width: float, opts: dict
) -> nn.Module:
    def chs(c: int) -> int:
        return make_divisible(c * width, 8)

    in_chs = chs(32)
    stem = ConvBnAct(opts["in_chs"], in_chs, 3, 2, act_layer=act)
    num_blocks = sum(stage[3] for stage in stages)
    blocks: list[nn.Module] = []
    for exp, k, stride, repeats, out, se in stages:
        for i in range(repeats):
            s = stride if i == 0 else 1
            drop = opts["drop_path_rate"] * len(blocks) / num_blocks
            if exp == 1:
                # The first block has no expansion: depthwise, SE, linear projection.
                block: nn.Module = DepthwiseSeparableConv(
                    in_chs,
                    chs(out),
                    k,
                    s,
                    act_layer=act,
                    se_ratio=se,
                    pw_act=False,
                    residual=True,
                    drop_path_rate=drop,
                )
            else:
                block = MBConv(
                    in_chs,
                    chs(out),
                    k,
                    s,
                    exp_ratio=exp,
                    act_layer=act,
                    se_ratio=se,
                    se_base="in",
                    drop_path_rate=drop,
                )
            blocks.append(block)
            in_chs = chs(out)
    num_features = chs(1280)
    model = MobileClassifier(
        stem=stem,
        blocks=blocks,
        head=ConvBnAct(in_chs, num_features, 1, act_layer=act),
        pre_logits=nn.Identity(),
        num_features=num_features,
        num_classes=num_classes,
        dropout=opts["dropout"],
    )
    return init_weights(model)
