"""What the MobileNet-family zoo models share: option checking, the classifier network, weight init."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.zoo._checks import is_fraction, is_positive_int, is_positive_number

__all__ = ["MobileClassifier", "check_model_args", "init_weights"]


def check_model_args(
    model: str, num_classes: object, width: object, kwargs: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """Validate the common arguments of a zoo entry point and fill in its options.

    Args:
        model: the zoo name, used in error messages.
        num_classes: must be a positive integer.
        width: must be a positive finite number.
        kwargs: the options the caller passed.
        defaults: every option the model takes, with its default.

    Returns:
        ``defaults`` updated with ``kwargs``, with ``dropout``/``drop_path_rate`` in [0, 1) and ``in_chs``
        a positive integer where present.
    """
    if not is_positive_int(num_classes):
        raise InvalidInputError(
            f"{model}: num_classes={num_classes!r} is invalid; pass a positive integer such as 10"
        )
    if not is_positive_number(width):
        raise InvalidInputError(
            f"{model}: width={width!r} is invalid; pass a positive width multiplier such as 0.5, 1.0 or 1.4"
        )
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise InvalidInputError(
            f"{model} does not take option(s) {', '.join(map(repr, unknown))}; "
            f"its options are {', '.join(sorted(defaults))}"
        )
    options = {**defaults, **kwargs}
    for name in ("dropout", "drop_path_rate"):
        if name in options:
            value = options[name]
            if not is_fraction(value):
                raise InvalidInputError(f"{model}: {name}={value!r} is invalid; pass a probability in [0, 1)")
    if "in_chs" in options:
        value = options["in_chs"]
        if not is_positive_int(value):
            raise InvalidInputError(
                f"{model}: in_chs={value!r} is invalid; pass the number of input channels (3 for RGB, 1 for grey)"
            )
    return options


class MobileClassifier(nn.Module):
    """stem → blocks → head → global average pool → [pre-logits] → dropout → linear classifier.

    The layout shared by MobileNetV1/V2/V3, MnasNet, EfficientNet and GhostNet. The pooling is adaptive,
    so the network takes any input size whose stride-32 output is at least 1x1 (e.g. 32x32 CIFAR).

    Args:
        stem: the first conv(s).
        blocks: the body, applied in order (kept flat so pruning and NAS tools can index blocks).
        head: layers between the body and the pooling (e.g. a 1x1 conv to 1280 channels); may be Identity.
        pre_logits: layers between the pooling and the classifier on the pooled vector (MobileNetV3's and
            GhostNet's extra 1280-wide layer); may be Identity.
        num_features: width of the vector the classifier reads.
        num_classes: classifier outputs.
        dropout: dropout probability before the classifier.
    """

    def __init__(
        self,
        stem: nn.Module,
        blocks: Iterable[nn.Module],
        head: nn.Module,
        pre_logits: nn.Module,
        num_features: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pre_logits = pre_logits
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_classes)
        self.num_features = num_features
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before pooling."""
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(self.forward_features(x)), 1)
        return self.classifier(self.dropout(self.pre_logits(x)))


def init_weights(model: nn.Module) -> nn.Module:
    """Initialise as the MobileNet/EfficientNet reference code does and return ``model``.

    Convs: Kaiming normal (fan-out); BatchNorm: weight 1, bias 0; linear layers: normal(0, 0.01);
    every bias 0.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
    return model
