"""Train a baseline classifier and save it as a slimforge model directory (``slimforge compress --train``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from slimforge.data import DatasetSplits
from slimforge.io import JsonRecord
from slimforge.training._models import resolve_model
from slimforge.training._runtime import TrainRuntime
from slimforge.training._trainer import TrainResult, TrainSettings, accuracy, train_classifier

__all__ = ["BaselineResult", "train_baseline"]


@dataclass(frozen=True)
class BaselineResult(JsonRecord):
    """A trained baseline: where it is saved, its accuracy and how it was trained."""

    model: str
    data: str
    out_dir: str
    num_params: int
    val_accuracy_pct: float
    test_accuracy_pct: float | None
    config: TrainSettings
    training: TrainResult


def train_baseline(
    model: str,
    data: str | DatasetSplits,
    out_dir: str | Path,
    config: TrainSettings | None = None,
    *,
    width: float | None = None,
    val_fraction: float = 0.1,
    overwrite: bool = False,
    progress: bool = False,
    runtime: TrainRuntime | None = None,
) -> BaselineResult:
    """Train MODEL (a zoo name, or a saved model to train further) on DATA and save it to ``out_dir``.

    DATA is a data spec or loaded :class:`slimforge.data.DatasetSplits`.

    The validation part (``val_fraction`` of the training images, seeded split) is held out; the
    result records validation and test accuracy. ``out_dir`` gets ``model.json`` + ``model.pt``
    (:func:`slimforge.io.save_model`) and ``train.json``. ``runtime`` says where the training and the
    accuracy evaluation run (:class:`slimforge.training.TrainRuntime`; the CPU when None).
    """
    from slimforge.data import load_dataset
    from slimforge.io import atomic_write_text, save_model

    config = config if config is not None else TrainSettings()
    splits = (
        data
        if isinstance(data, DatasetSplits)
        else load_dataset(data, val_fraction=val_fraction, seed=config.seed)
    )
    source = resolve_model(model, num_classes=splits.num_classes, width=width)
    net = source.model
    result = train_classifier(net, splits.train, config, progress=progress, desc=f"train {source.label}",
                              runtime=runtime)
    where = None if runtime is None else runtime.device
    cfg = {**source.config, "input_shape": [1, *splits.input_shape]}
    out = save_model(net, cfg, out_dir, overwrite=overwrite)
    baseline = BaselineResult(
        model=source.label,
        data=str(splits.spec),
        out_dir=str(out),
        num_params=sum(p.numel() for p in net.parameters()),
        val_accuracy_pct=accuracy(net, splits.val, device=where),
        test_accuracy_pct=accuracy(net, splits.test, device=where) if splits.test is not None else None,
        config=config,
        training=result,
    )
    atomic_write_text(out / "train.json", json.dumps(baseline.to_dict(), indent=2) + "\n")
    return baseline
