"""Standalone training in ``bench spaces``: the hand-designed networks and the retrained front networks.

Both get the same budget (epochs, batch, SGD settings, seed) on the same training images, so the
final comparison is between architectures, not between training schemes. Weights are kept as a
``state_dict`` next to ``train.json``, which records the settings they were trained with; a
directory trained with other settings is refused rather than silently reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from slimforge.errors import InvalidInputError
from slimforge.bench._common import write_json_atomic
from slimforge.bench._spaces_config import SpacesConfig

__all__ = ["standalone_settings", "train_standalone"]


def standalone_settings(config: SpacesConfig) -> Any:
    """The :class:`~slimforge.training.TrainSettings` of every network trained standalone (zoo, retrained)."""
    from slimforge.training import TrainSettings

    return TrainSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        momentum=0.9,
        weight_decay=config.weight_decay,
        seed=config.seed,
        lr_schedule=config.lr_schedule,
    )


def train_standalone(
    model: torch.nn.Module,
    identity: dict[str, Any],
    directory: Path,
    splits: Any,
    config: SpacesConfig,
    *,
    progress: bool,
    desc: str,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``model`` trained on the training part with the benchmark's budget, or loaded when already trained.

    Args:
        model: the freshly initialised network (seeded by the caller).
        identity: what the network is (zoo name and width, or space, options and architecture); with
            the data and training settings it must match what ``directory`` holds.
        directory: where ``model.pt`` and ``train.json`` are kept.
        splits: the benchmark's data splits.
        config: the benchmark settings (epochs, batch size, learning rate, weight decay, seed).
        progress: a progress bar on stderr.
        desc: the progress bar's label.

    Raises:
        InvalidInputError: ``directory`` holds weights trained with other settings.
    """
    from slimforge.training import train_classifier

    train_config = standalone_settings(config)
    wanted = {
        **identity,
        "data": config.data,
        "val_fraction": config.val_fraction,
        "train": train_config.to_dict(),
    }
    weights, info_path = directory / "model.pt", directory / "train.json"
    if weights.exists() and info_path.exists():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if isinstance(info.get("settings", {}).get("train"), dict):  # written before the setting existed
            info["settings"]["train"].setdefault("lr_schedule", "cosine")
        if info.get("settings") != json.loads(json.dumps(wanted)):
            raise InvalidInputError(
                f"{directory} holds a network trained with other settings than {desc!r}; use another --out"
            )
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model.eval(), info
    directory.mkdir(parents=True, exist_ok=True)
    result = train_classifier(model, splits.train, train_config, progress=progress, desc=desc)
    tmp = directory / "model.pt.partial"
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, weights)
    info = {
        "settings": wanted,
        "training": result.to_dict(),
        "num_params": sum(p.numel() for p in model.parameters()),
    }
    write_json_atomic(info_path, info)
    return model.eval(), info
