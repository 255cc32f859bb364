"""Hand-designed lightweight networks behind a registry.

>>> from slimforge import zoo
>>> model = zoo.create_model("mobilenet_v2", num_classes=10, width=0.5)

Entries are registered here, explicitly and lazily (``"module:function"``), so listing the zoo
does not build or import every model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.zoo._classic_common import init_conv_bn_linear

__all__ = [
    "MODELS",
    "build_from_config",
    "create_model",
    "default_input_shape",
    "init_conv_bn_linear",
    "input_shape_from_config",
    "list_models",
]

#: zoo models built for 32x32 inputs (CIFAR strides); the others take ImageNet's 224x224.
_CIFAR_MODELS = frozenset({"mobilenet_v2_cifar", "resnet20"})

MODELS: Registry = Registry("model")
for _name, _ref in [
    ("mobilenet_v1", "slimforge.zoo.mobilenet:mobilenet_v1"),
    ("mobilenet_v2", "slimforge.zoo.mobilenet:mobilenet_v2"),
    ("mobilenet_v2_cifar", "slimforge.zoo.mobilenet:mobilenet_v2_cifar"),
    ("mobilenet_v3_small", "slimforge.zoo.mobilenet:mobilenet_v3_small"),
    ("mobilenet_v3_large", "slimforge.zoo.mobilenet:mobilenet_v3_large"),
    ("efficientnet_b0", "slimforge.zoo.efficientnet:efficientnet_b0"),
    ("mnasnet_a1", "slimforge.zoo.efficientnet:mnasnet_a1"),
    ("ghostnet", "slimforge.zoo.ghostnet:ghostnet"),
    ("shufflenet_v1", "slimforge.zoo.shufflenet:shufflenet_v1"),
    ("shufflenet_v2", "slimforge.zoo.shufflenet:shufflenet_v2"),
    ("squeezenet_1_1", "slimforge.zoo.squeezenet:squeezenet_1_1"),
    ("resnet18", "slimforge.zoo.resnet:resnet18"),
    ("resnet20", "slimforge.zoo.resnet:resnet20"),
]:
    MODELS.register(_name, _ref)


def list_models() -> list[str]:
    """Names of every zoo model."""
    return MODELS.list()


def create_model(name: str, num_classes: int = 1000, width: float = 1.0, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with fresh weights.

    Args:
        name: a name from :func:`list_models`.
        num_classes: size of the classifier output.
        width: channel width multiplier (models without one accept only 1.0).
        **kwargs: model-specific options (e.g. ``dropout``, ``groups`` for ShuffleNetV1).
    """
    return MODELS.get(name)(num_classes=num_classes, width=width, **kwargs)


def default_input_shape(name: str) -> tuple[int, int, int, int]:
    """The batch-1 input a zoo model is designed for: 1x3x32x32 for CIFAR-stride models, else 1x3x224x224."""
    MODELS.get(name)  # an unknown name raises with close matches
    return (1, 3, 32, 32) if name in _CIFAR_MODELS else (1, 3, 224, 224)


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """The saved-model builder ``zoo``: ``create_model(config["name"], **config["kwargs"])``."""
    name = config.get("name")
    if not isinstance(name, str):
        raise InvalidInputError(f"a 'zoo' model config needs a string 'name', got {name!r}")
    return create_model(name, **config.get("kwargs", {}))


def input_shape_from_config(config: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """The saved-model input shape of builder ``zoo``: :func:`default_input_shape` of ``config["name"]``."""
    return default_input_shape(config["name"])
