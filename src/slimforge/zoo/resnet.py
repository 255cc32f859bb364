"""ResNet-18 for ImageNet and ResNet-20 for CIFAR (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, Table 1 and §4.2), built from :class:`slimforge.nn.residual.BasicBlock`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from slimforge.nn.layers import ConvBnAct
from slimforge.nn.residual import BasicBlock
from slimforge.zoo._classic_common import PooledClassifier, check_common, check_width_choice

__all__ = ["ResNet", "resnet18", "resnet20"]


class ResNet(PooledClassifier):
    """A stem, stages of :class:`BasicBlock` (the first block of a stage strides), global pool, linear.

    Args:
        stem: the layers before the first stage.
        stem_chs: channels the stem produces.
        stage_chs: output channels of each stage.
        depths: blocks per stage.
        strides: stride of each stage's first block.
        num_classes: classifier outputs.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_chs: int,
        stage_chs: tuple[int, ...],
        depths: tuple[int, ...],
        strides: tuple[int, ...],
        num_classes: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = stem
        blocks: list[nn.Module] = []
        in_chs = stem_chs
        for out_chs, depth, stride in zip(stage_chs, depths, strides):
            for i in range(depth):
                blocks.append(BasicBlock(in_chs, out_chs, stride if i == 0 else 1))
                in_chs = out_chs
        self.stages = nn.Sequential(*blocks)
        self._set_classifier(in_chs, num_classes, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


def resnet18(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """ResNet-18 (He et al., 2016, Table 1): 7x7 s2 stem + max-pool, [2, 2, 2, 2] basic blocks, 64-512 channels.

    Args:
        num_classes: classifier outputs.
        width: only 1.0 (the paper has no width multiplier).
        **kwargs: ``dropout`` before the classifier (default 0).
    """
    check_common("resnet18", num_classes, width, kwargs, known=("dropout",))
    check_width_choice("resnet18", width, (1.0,))
    stem = nn.Sequential(ConvBnAct(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
    return ResNet(
        stem,
        64,
        (64, 128, 256, 512),
        (2, 2, 2, 2),
        (1, 2, 2, 2),
        num_classes,
        float(kwargs.get("dropout", 0.0)),
    )


def resnet20(num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """CIFAR ResNet-20 (He et al., 2016, §4.2): 3x3 stem, 3 stages x 3 basic blocks of 16/32/64 channels.

    Meant for 32x32 inputs (no stem down-sampling); global pooling lets it run at other sizes.
    Shape-changing shortcuts are 1x1 projections rather than the paper's zero-padding (option A).

    Args:
        num_classes: classifier outputs (10 for CIFAR-10; the registry default is 1000).
        width: any positive multiplier of the 16/32/64 channels (rounded, at least 1 channel).
        **kwargs: ``dropout`` before the classifier (default 0).
    """
    check_common("resnet20", num_classes, width, kwargs, known=("dropout",))
    chs = tuple(max(1, round(c * width)) for c in (16, 32, 64))
    stem = ConvBnAct(3, chs[0], 3)
    return ResNet(stem, chs[0], chs, (3, 3, 3), (1, 2, 2), num_classes, float(kwargs.get("dropout", 0.0)))
