"""MODEL by reference: one resolver for every command and API call that takes a model.

A model reference is one of:

- a zoo name (``mobilenet_v2``), built fresh (``num_classes``, ``width`` and ``model_args``);
- a saved slimforge model directory (``model.json`` + ``model.pt``), loaded trained;
- a factory of the user's own: ``path/to/file.py:factory`` or ``package.module:factory``, a callable
  returning an ``nn.Module``, called with ``model_args`` (``--model-arg KEY=VALUE``); with
  ``weights`` (a ``state_dict`` file, read with ``weights_only=True``) it is loaded trained.

A model saved from a factory records the reference (builder ``factory``), so it reloads without any
registration; reloading imports the file or module the user named when saving.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.io._refs import ReferenceError, absolute_reference, import_reference, is_reference

__all__ = ["ModelSource", "build_from_factory", "open_model", "parse_model_args"]


@dataclass(frozen=True, eq=False)
class ModelSource:
    """A model, the config that rebuilds it (``save_model``'s), where it came from, whether it is trained.

    ``input_shape`` is the model's own input (batch 1) where known: a saved model's recorded shape,
    a CIFAR-stride zoo model's 1x3x32x32, else None.
    """

    model: nn.Module
    config: dict[str, Any]
    label: str
    trained: bool
    input_shape: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_from_factory(config: Mapping[str, Any]) -> nn.Module:
    """The saved-model builder ``factory``: ``import_reference(config["ref"])(**config["kwargs"])``."""
    ref = config.get("ref")
    if not isinstance(ref, str):
        raise InvalidInputError(f"a 'factory' model config needs a string 'ref' (file.py:name), got {ref!r}")
    factory = import_reference(ref, what="model factory")
    if not callable(factory):
        raise ReferenceError(f"model factory {ref!r} is a {type(factory).__name__}, not a callable returning a model")
    kwargs = dict(config.get("kwargs", {}))
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise ReferenceError(f"model factory {ref!r} does not take {sorted(kwargs)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - user code: one line naming the reference
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ReferenceError(f"model factory {ref!r} raised {type(exc).__name__}: {text}") from None
    if not isinstance(model, nn.Module):
        raise ReferenceError(f"model factory {ref!r} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def parse_model_args(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``["width=0.5", "num_classes=10", "name=tiny"]`` -> ``{"width": 0.5, ...}`` (numbers and booleans parsed)."""
    import json

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise InvalidInputError(f"--model-arg {item!r} is not KEY=VALUE (e.g. width=0.5)")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def open_model(
    spec: str | nn.Module,
    *,
    num_classes: int | None = None,
    width: float | None = None,
    model_args: Mapping[str, Any] | None = None,
    weights: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> ModelSource:
    """Resolve a model reference (see the module docstring) to a model and the config that rebuilds it.

    Args:
        spec: a zoo name, a saved model directory (or its ``model.json``), ``file.py:factory`` /
            ``package.module:factory``, or an ``nn.Module`` (then give ``config``; it is deep-copied).
        num_classes: classifier outputs of a zoo model or a factory that takes ``num_classes``.
        width: width multiplier of a zoo model.
        model_args: further keyword arguments of the zoo model or factory.
        weights: a ``state_dict`` file for a factory's (or zoo model's) fresh network.
        config: the config that rebuilds an ``nn.Module`` passed as ``spec``.
    """
    from slimforge.io._model import build_model, default_input_shape, load_model, read_model_config

    args = dict(model_args or {})
    if isinstance(spec, nn.Module):
        if config is None:
            raise InvalidInputError(
                "a model object needs its config (e.g. {'builder': 'zoo', 'name': 'resnet20', 'kwargs': {...}}) "
                "so results can be rebuilt"
            )
        return ModelSource(copy.deepcopy(spec), dict(config), str(config.get("name", "model")), True,
                           _shape(config.get("input_shape")))
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.is_dir() or path.name == "model.json":
        if weights is not None or args:
            raise InvalidInputError(f"{text} is a saved model: it takes no --weights or --model-arg")
        cfg = read_model_config(path)
        return ModelSource(load_model(path), cfg, text, True, _shape(cfg.get("input_shape")))
    if is_reference(text):
        kwargs = {**({"num_classes": num_classes} if num_classes is not None and "num_classes" not in args else {}),
                  **args}
        cfg = {"builder": "factory", "ref": absolute_reference(text), "kwargs": kwargs}
        try:
            model = build_model(cfg)
        except ReferenceError as exc:
            if "num_classes" in kwargs and "num_classes" not in args and "does not take" in str(exc):
                cfg["kwargs"] = args  # a factory without num_classes: call it with what the user gave
                model = build_model(cfg)
            else:
                raise
        return _with_weights(ModelSource(model, cfg, text, False), weights)
    if path.suffix or "/" in text or "\\" in text:
        raise InvalidInputError(
            f"model {text!r} is not a zoo name, a saved slimforge model directory or a reference "
            "(path/to/file.py:factory, package.module:factory)"
        )
    kwargs = {"num_classes": num_classes if num_classes is not None else 1000, **args}
    if width is not None:
        kwargs["width"] = width
    cfg = {"builder": "zoo", "name": text, "kwargs": kwargs}
    source = ModelSource(build_model(cfg), cfg, text, False, default_input_shape(cfg))
    return _with_weights(source, weights)


def _with_weights(source: ModelSource, weights: str | Path | None) -> ModelSource:
    if weights is None:
        return source
    path = Path(weights).expanduser()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"--weights {str(path)!r}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - a file that is not a plain state_dict is refused, never unpickled
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"--weights {str(path)!r} is not a state_dict readable with weights_only=True: {text}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"--weights {str(path)!r} does not hold a state_dict (a dict of tensors)")
    try:
        source.model.load_state_dict(state)
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModelFileError(f"--weights {str(path)!r} does not fit {source.label}: {first}") from None
    return ModelSource(source.model.eval(), source.config, source.label, True, source.input_shape)


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) and value else None
