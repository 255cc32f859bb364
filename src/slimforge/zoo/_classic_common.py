"""Argument checks, weight initialisation and the pooled classifier shared by the ShuffleNet / SqueezeNet /
ResNet entries."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError, close_matches
from slimforge.zoo._checks import is_positive_int, is_positive_number

__all__ = ["PooledClassifier", "check_common", "check_width_choice", "init_conv_bn_linear"]


def check_common(
    model: str, num_classes: int, width: float, kwargs: Mapping[str, Any], known: Iterable[str]
) -> None:
    """Reject a non-positive ``num_classes`` or ``width`` and any keyword ``model`` does not take."""
    known = sorted(known)
    for key in kwargs:
        if key not in known:
            hint = close_matches(key, known)
            did_you_mean = f"did you mean {', '.join(hint)}? " if hint else ""
            raise InvalidInputError(
                f"{model} got an unknown option {key!r}; {did_you_mean}"
                f"it accepts: num_classes, width{''.join(', ' + k for k in known)}"
            )
    if not is_positive_int(num_classes):
        raise InvalidInputError(f"{model}: num_classes={num_classes!r} must be a positive integer (e.g. 10)")
    if not is_positive_number(width):
        raise InvalidInputError(
            f"{model}: width={width!r} must be a positive number (1.0 is the published model)"
        )
    dropout = kwargs.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidInputError(f"{model}: dropout={dropout!r} must be a probability in [0, 1)")


def check_width_choice(model: str, width: float, choices: Iterable[float]) -> None:
    """Reject a width that is not one of the published ``choices``."""
    choices = sorted(choices)
    if not any(math.isclose(width, c) for c in choices):
        raise InvalidInputError(
            f"{model} has no width={width!r}; use one of {', '.join(str(c) for c in choices)}"
        )


def init_conv_bn_linear(model: nn.Module, zero_init_last: bool = True) -> None:
    """He-normal (fan-out) convs, unit/zero BN, N(0, 0.01) linear layers, zero biases.

    The initialisation ResNet training starts from (He et al., 2015). The fan-out of a grouped conv
    is ``out_chs / groups * k * k``: torch's ``kaiming_normal_`` takes ``out_chs * k * k`` for a
    depthwise conv, which shrinks each depthwise layer's output by ~sqrt(channels) and leaves a
    ShuffleNet's eval-mode logits near 1e-6 at initialisation.

    With ``zero_init_last``, blocks that define ``zero_init_last()`` (residual units) start as the
    identity (Goyal et al., 2017): otherwise each residual addition doubles the variance, and an
    untrained ShuffleNetV1's eval-mode logits reach ~1e3.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            fan_out = m.out_channels // m.groups * kh * kw
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    if zero_init_last:
        for m in model.modules():
            if hasattr(m, "zero_init_last"):
                m.zero_init_last()


class PooledClassifier(nn.Module, ABC):
    """features → global average pool → dropout (when > 0) → linear classifier.

    A subclass registers its feature layers, then calls :meth:`_set_classifier`, and defines
    :meth:`forward_features` (the feature map before pooling); without it the class cannot be built.
    """

    def _set_classifier(self, num_features: int, num_classes: int, dropout: float) -> None:
        """The pooling, dropout and classifier; then every weight initialised (:func:`init_conv_bn_linear`)."""
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(num_features, num_classes)
        self.num_features = num_features
        init_conv_bn_linear(self)

    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x))
        return self.classifier(self.dropout(torch.flatten(x, 1)))
