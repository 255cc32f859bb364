"""Where a model to compress comes from: a zoo name or a saved slimforge model directory."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError

__all__ = ["ModelSource", "resolve_model"]


@dataclass(frozen=True, eq=False)
class ModelSource:
    """A model, the config that rebuilds it, and where it came from."""

    model: nn.Module
    config: dict[str, Any]
    label: str
    trained: bool


def resolve_model(
    spec: str | nn.Module,
    *,
    num_classes: int,
    width: float | None = None,
    config: dict[str, Any] | None = None,
) -> ModelSource:
    """Turn MODEL (a zoo name, a saved model directory, a factory reference, or a module with its config) into a model.

    A saved model is loaded as it is (trained); a zoo name is built fresh with ``num_classes`` and
    ``width``. A module passed in is deep-copied, so compression never changes the caller's model.
    """
    from slimforge.io import build_model, load_model, read_model_config

    if isinstance(spec, nn.Module):
        if config is None:
            raise InvalidInputError(
                "a model object needs its config (e.g. {'builder': 'zoo', 'name': 'resnet20', 'kwargs': {...}}) "
                "so the compressed result can be rebuilt"
            )
        return ModelSource(copy.deepcopy(spec), dict(config), str(config.get("name", "model")), True)
    from slimforge.io import is_reference, open_model

    if is_reference(spec):  # path/to/file.py:factory or package.module:factory, imported because the user typed it
        opened = open_model(spec, num_classes=num_classes, width=width)
        return ModelSource(opened.model, dict(opened.config), opened.label, opened.trained)
    path = Path(spec)
    if path.is_dir() or path.name == "model.json":
        cfg = read_model_config(path)
        return ModelSource(load_model(path), cfg, f"{spec}", True)
    if "/" in spec or path.suffix:
        raise InvalidInputError(f"model {spec!r} is neither a saved slimforge model directory nor a zoo name")
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if width is not None:
        kwargs["width"] = width
    cfg = {"builder": "zoo", "name": spec, "kwargs": kwargs}
    return ModelSource(build_model(cfg), cfg, spec, False)
