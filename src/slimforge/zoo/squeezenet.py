"""SqueezeNet 1.1 (Iandola et al., 2016; version 1.1 from the authors' release, forresti/SqueezeNet).

1.1 keeps 1.0's accuracy with ~2.4x fewer MACs: a 3x3/64 first conv instead of 7x7/96, and the
max-pools moved earlier (after conv1, fire3 and fire5).

MAC counting at 224x224: FlopCounterMode counts the multiply-accumulates of the convolutions only
(2 FLOPs each; bias additions, ReLU and pooling are free), which gives 349.15M for 1.1, 86.5M of
them in the 1x1 classifier conv. The ~352M figure often quoted also counts one operation per conv
output element for the bias addition (2.59M more: 351.74M). Counting at Caffe's 227x227 input
instead (feature maps 113/56/28/14) gives 387.8M.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from slimforge.nn.fire import Fire
from slimforge.nn.layers import ConvBnAct
from slimforge.zoo._classic_common import check_common, check_width_choice

__all__ = ["SqueezeNet", "squeezenet_1_1"]

# (out_chs, squeeze_chs) of fire2..fire9; "M" is a 3x3 stride-2 max-pool.
_FIRE_1_1: tuple[tuple[int, int] | str, ...] = (
    (128, 16),
    (128, 16),
    "M",
    (256, 32),
    (256, 32),
    "M",
    (384, 48),
    (384, 48),
    (512, 64),
    (512, 64),
)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1: conv1 → Fire modules with max-pools → dropout → 1x1 conv classifier → global pool.

    No BatchNorm, conv biases, as published. The classifier is a 1x1 conv to ``num_classes``
    followed by ReLU and adaptive average pooling, so any input of 32x32 or more works.
    """

    def __init__(self, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        # Unpadded 3x3 s2 conv as in the release (224 -> 111); ConvBnAct would pad it to 112 and
        # add ~2% MACs. Ceil-mode pools reproduce Caffe's 111 -> 55 -> 27 -> 13.
        layers: list[nn.Module] = [
            nn.Conv2d(3, 64, 3, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        ]
        in_chs = 64
        for spec in _FIRE_1_1:
            if spec == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                out_chs, squeeze_chs = spec
                layers.append(Fire(in_chs, out_chs, squeeze_chs))
                in_chs = out_chs
        self.features = nn.Sequential(*layers)
        self.num_features = in_chs
        self.classifier = nn.Sequential(
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            ConvBnAct(in_chs, num_classes, 1, norm=False, bias=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # The release's scheme: Kaiming-uniform everywhere except the classifier conv, drawn small
        # (N(0, 0.01)) so the initial class scores are near zero after the final ReLU.
        final = self.classifier[1][0]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet_1_1(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """SqueezeNet 1.1 (Iandola et al., 2016): 1.24M parameters, ~349M MACs at 224x224.

    Args:
        num_classes: classifier outputs.
        width: only 1.0 (SqueezeNet has no width multiplier).
        **kwargs: ``dropout`` before the classifier (default 0.5, as published).
    """
    check_common("squeezenet_1_1", num_classes, width, kwargs, known=("dropout",))
    check_width_choice("squeezenet_1_1", width, (1.0,))
    return SqueezeNet(num_classes, float(kwargs.get("dropout", 0.5)))
