"""Saved slimforge models: a directory with ``model.json`` (how to rebuild) and ``model.pt`` (weights).

``model.json`` is ``{"format": "slimforge-model", "version": 1, "builder": "zoo", "name": ...,
"kwargs": {...}, "input_shape": [...]}``; the ``builder`` key selects an entry of :data:`BUILDERS`,
which rebuilds the architecture from the rest of the config: ``zoo`` (a zoo model), ``space`` (a
search space's network for an architecture string), ``compressed`` (a compressed model's recorded
structure). ``model.pt`` is the ``state_dict``, read with ``weights_only=True``:
nothing is pickled. A model is written to a temporary directory and renamed into place, so a
reader never sees half a model.

>>> save_model(model, {"builder": "zoo", "name": "mobilenet_v2", "kwargs": {"num_classes": 10},
...                    "input_shape": [1, 3, 32, 32]}, "runs/mnv2")
>>> model = load_model("runs/mnv2")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError, SlimforgeError, UnknownNameError
from slimforge.registry import Registry

__all__ = [
    "BUILDERS",
    "FORMAT",
    "INPUT_SHAPES",
    "VERSION",
    "ModelBuildError",
    "build_model",
    "default_input_shape",
    "load_model",
    "read_model_config",
    "save_model",
]

FORMAT = "slimforge-model"
VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "model.pt"


class ModelBuildError(SlimforgeError):
    """A builder config that does not build a model (bad kwargs, an entry that fails to build)."""


#: builder name -> function(config) -> nn.Module with fresh weights.
BUILDERS: Registry[Callable[[Mapping[str, Any]], nn.Module]] = Registry("model builder")
# Each builder lives with what it builds (zoo models, search-space networks, compressed models);
# the entries are lazy references, so this storage tier imports none of them until a model loads.
BUILDERS.register("zoo", "slimforge.zoo:build_from_config")
BUILDERS.register("space", "slimforge.spaces:build_from_config")
BUILDERS.register("compressed", "slimforge.compress:build_compressed")
BUILDERS.register("factory", "slimforge.io._open:build_from_factory")

#: builder name -> function(config) -> the batch-1 input shape a model so built is designed for.
#: Lazy like :data:`BUILDERS`: each entry lives with what it builds (a zoo model knows its input).
INPUT_SHAPES: Registry[Callable[[Mapping[str, Any]], tuple[int, ...] | None]] = Registry("model input shape")
INPUT_SHAPES.register("zoo", "slimforge.zoo:input_shape_from_config")


def default_input_shape(config: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The batch-1 input the model a config builds is designed for, where its builder knows it, else None."""
    builder = config.get("builder")
    return INPUT_SHAPES.get(builder)(config) if isinstance(builder, str) and builder in INPUT_SHAPES else None


def _check_config(config: Any, where: str) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise InvalidInputError(f"{where}: a model config is a JSON object, got {type(config).__name__}")
    config = dict(config)
    if "builder" not in config:
        raise InvalidInputError(
            f"{where}: the model config has no 'builder' (one of {', '.join(BUILDERS.list())})"
        )
    BUILDERS.get(config["builder"])  # an unknown builder raises with close names
    if not isinstance(config.setdefault("kwargs", {}), Mapping):
        raise InvalidInputError(f"{where}: 'kwargs' must be a JSON object, got {config['kwargs']!r}")
    shape = config.get("input_shape")
    if shape is not None and (
        not isinstance(shape, (list, tuple)) or not shape or not all(type(d) is int and d > 0 for d in shape)
    ):
        raise InvalidInputError(f"{where}: 'input_shape' must be a list of positive integers, got {shape!r}")
    return config


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """Build the architecture a config describes, with fresh weights.

    Raises:
        UnknownNameError: for an unknown builder or zoo name.
        ModelBuildError: when the builder fails on the config.
    """
    config = _check_config(config, "build_model")
    builder = BUILDERS.get(config["builder"])
    try:
        model = builder(config)
    except SlimforgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any builder failure, e.g. an unfinished entry
        what = config.get("name", config["builder"])
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelBuildError(f"model {what!r} failed to build: {type(exc).__name__}: {reason}") from None
    if not isinstance(model, nn.Module):
        raise ModelBuildError(
            f"builder {config['builder']!r} returned {type(model).__name__}, not an nn.Module"
        )
    return model


def save_model(
    model: nn.Module, builder_config: Mapping[str, Any], out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Save ``model`` as a directory that :func:`load_model` rebuilds; returns the directory.

    Args:
        model: the model whose weights to save.
        builder_config: ``{"builder": ..., "name": ..., "kwargs": {...}, "input_shape": [...]}``;
            it must rebuild ``model``'s architecture (checked: same state_dict keys and shapes).
        out_dir: the directory to create.
        overwrite: replace an existing ``out_dir`` (otherwise that raises).
    """
    out_dir = Path(out_dir)
    config = _check_config(builder_config, "save_model")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"save_model: the model config is not JSON-serialisable ({exc})") from None
    if out_dir.exists() and not overwrite:
        raise InvalidInputError(f"{out_dir} already exists; choose another directory or pass overwrite=True")
    state = model.state_dict()
    _check_same_architecture(
        build_model(config).state_dict(),
        state,
        "save_model: the config does not rebuild this model",
        InvalidInputError,
    )
    document = {"format": FORMAT, "version": VERSION, **config}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp / WEIGHTS_FILE)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
            os.replace(out_dir, old / "model")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _model_dir(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.name == CONFIG_FILE:
        path = path.parent
    if not path.is_dir():
        raise ModelFileError(f"cannot read saved model {path}: no such directory")
    if not (path / CONFIG_FILE).is_file():
        raise ModelFileError(f"{path} is not a saved slimforge model: it has no {CONFIG_FILE}")
    return path


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The validated ``model.json`` of a saved model (a directory, or its ``model.json``)."""
    directory = _model_dir(path)
    try:
        document = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"cannot read {directory / CONFIG_FILE}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(
            f"{directory / CONFIG_FILE} is not a slimforge model file (format is not {FORMAT!r})"
        )
    if document.get("version") != VERSION:
        raise ModelFileError(
            f"{directory / CONFIG_FILE} has version {document.get('version')!r}; this slimforge reads version {VERSION}"
        )
    try:
        return _check_config(document, str(directory / CONFIG_FILE))
    except InvalidInputError as exc:
        raise ModelFileError(str(exc)) from None
    except UnknownNameError as exc:
        raise ModelFileError(f"{directory / CONFIG_FILE}: {exc}") from None


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a saved model and load its weights (``weights_only=True``); returned in eval mode."""
    directory = _model_dir(path)
    config = read_model_config(directory)
    model = build_model(config)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"{directory} is not a complete saved model: it has no {WEIGHTS_FILE}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"cannot read weights {weights}: {reason}") from None
    if not isinstance(state, dict):
        raise ModelFileError(f"{weights} does not hold a state_dict")
    _check_same_architecture(
        model.state_dict(), state, f"{weights} does not match the model in {CONFIG_FILE}", ModelFileError
    )
    model.load_state_dict(state)
    return model.eval()


def _check_same_architecture(
    expected: Mapping[str, Any], got: Mapping[str, Any], message: str, error: type[SlimforgeError]
) -> None:
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    shapes = [k for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    if missing or extra or shapes:
        details = []
        if missing:
            details.append(
                f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            )
        if extra:
            details.append(
                f"unexpected {extra[0]}" + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
            )
        if shapes:
            k = shapes[0]
            details.append(f"{k} has shape {tuple(got[k].shape)}, expected {tuple(expected[k].shape)}")
        raise error(f"{message}: {'; '.join(details)}")
