"""Supernet checkpoints: a directory with ``config.json`` and ``checkpoint.pt``.

``config.json`` says what the run is (the :class:`TrainConfig`: space and its kwargs, method and its
options, hyper-parameters, data spec, seed) plus the number of classes and a summary of the data.
``checkpoint.pt`` holds ``state_dict``s only (the supernet's, the trainer's: optimisers, schedules,
generator state as a tensor, step counter) and is read with ``torch.load(..., weights_only=True)``.
Both are written atomically (a temporary file in the same folder, then ``os.replace``), so an
interruption leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from slimforge.errors import ModelFileError
from slimforge.io import atomic_path, atomic_write_json
from slimforge.spaces import Supernet, get_space
from slimforge.supernet.config import TrainConfig

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "has_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "load_supernet",
    "read_run_config",
    "save_checkpoint",
    "write_run_config",
]

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "slimforge-supernet/2"
#: space options whose default changed, per older format: what a run of that format trained with.
_LEGACY_SPACE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    # Format-1 layer-wise runs trained separate weights, the default then (issue 16 made it "elastic").
    "slimforge-supernet/1": {"mbv2": {"sharing": "separate"}, "shufflenet": {"sharing": "separate"}},
}


def write_run_config(
    directory: str | Path, config: TrainConfig, num_classes: int, data_info: dict[str, Any]
) -> Path:
    """Write ``config.json`` (atomically); returns its path."""
    path = Path(directory) / CONFIG_FILE
    doc = {"format": FORMAT, "config": config.to_dict(), "num_classes": num_classes, "data_info": data_info}
    return atomic_write_json(path, doc, indent=2)


def read_run_config(directory: str | Path) -> tuple[TrainConfig, int, dict[str, Any]]:
    """(config, num_classes, data summary) from ``directory/config.json``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; give the --out folder of 'slimforge supernet train'")
    try:
        doc = json.loads(path.read_text())
        fmt = doc.get("format")
        if fmt != FORMAT and fmt not in _LEGACY_SPACE_DEFAULTS:
            raise ValueError(f"format {fmt!r}, expected {FORMAT!r}")
        settings = dict(doc["config"])
        legacy = _LEGACY_SPACE_DEFAULTS.get(fmt, {}).get(settings.get("space", ""), {})
        settings["space_kwargs"] = {**legacy, **dict(settings.get("space_kwargs") or {})}
        # Runs written before these settings existed trained affine BN (and scored by recalibration).
        settings.setdefault("bn_affine", True)
        settings.setdefault("eval_bn", "recalibrate")
        settings.setdefault("lr_schedule", "cosine")  # the only schedule before it was a setting
        return TrainConfig.from_dict(settings), int(doc["num_classes"]), dict(doc.get("data_info", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is not a slimforge supernet config ({exc})") from None


def has_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a checkpoint."""
    return (Path(directory) / CHECKPOINT_FILE).is_file()


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (state dicts and numbers only) to ``directory/checkpoint.pt`` atomically."""
    path = Path(directory) / CHECKPOINT_FILE
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(directory: str | Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The state written by :func:`save_checkpoint`, loaded with ``weights_only=True``."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelFileError(
            f"{path} does not exist; train a supernet there first (slimforge supernet train)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelFileError(
            f"{path} cannot be read as a supernet checkpoint ({type(exc).__name__}: {exc})".replace("\n", " ")
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ModelFileError(f"{path} is not a slimforge supernet checkpoint (no 'model' state)")
    model = state["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise ModelFileError(
            f"{path}: its 'model' entry is a {type(model).__name__}, not a state dict of named tensors; "
            "train the supernet again with 'slimforge supernet train' (or give its run directory)"
        )
    return state


def load_model_state(supernet: torch.nn.Module, state: dict[str, Any], directory: str | Path) -> None:
    """Load a checkpoint's ``model`` state dict into ``supernet``; a mismatch raises ModelFileError."""
    try:
        supernet.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{directory}: the checkpoint does not fit its config's supernet ({exc})".replace("\n", " ")
        ) from None


def load_supernet(
    directory: str | Path, device: torch.device | str = "cpu"
) -> tuple[Supernet, TrainConfig, dict[str, Any]]:
    """The trained supernet of a run directory (in eval mode, on ``device``), its config and checkpoint state."""
    config, num_classes, _ = read_run_config(directory)
    state = load_checkpoint(directory, map_location=device)
    from slimforge.supernet._registry import TRAINERS

    space = get_space(config.space, **config.space_kwargs)
    supernet = TRAINERS.get(config.method).build_supernet(space, num_classes, config)
    load_model_state(supernet, state, directory)
    return supernet.to(device, memory_format=torch.channels_last).eval(), config, state
