"""What every policy search's final step shares: loading, the identical finetune, result rows, timing."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from slimforge.data import DatasetSplits

__all__ = [
    "finetune_model",
    "load_source",
    "load_splits",
    "measure_model_latencies",
]


def load_splits(data: str | DatasetSplits, split_seed: int, val_fraction: float = 0.1) -> DatasetSplits:
    """``data`` loaded (a spec) or as given; the validation split is drawn with ``split_seed``."""
    if isinstance(data, DatasetSplits):
        return data
    from slimforge.data import load_dataset

    return load_dataset(data, val_fraction=val_fraction, seed=split_seed)


def load_source(
    model: Any, splits: DatasetSplits, width: float | None, model_config: Mapping[str, Any] | None
) -> Any:
    """The model to compress (:func:`slimforge.training.resolve_model`); warns when it is untrained."""
    from slimforge.training import resolve_model

    source = resolve_model(
        model, num_classes=splits.num_classes, width=width, config=dict(model_config or {}) or None
    )
    if not source.trained:
        warnings.warn(
            f"{source.label} is untrained (a zoo name): train it first (slimforge compress --train)",
            UserWarning,
            stacklevel=4,
        )
    return source


def finetune_model(
    model: nn.Module,
    splits: DatasetSplits,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    hooks: Sequence[Any] = (),
) -> None:
    """Finetune ``model`` in place (SGD + cosine, :func:`train_classifier`); the seed also fixes dropout."""
    from slimforge.training import TrainSettings, train_classifier

    if epochs == 0:
        return
    config = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train_classifier(model, splits.train, config, hooks=hooks)


def measure_model_latencies(
    models: Sequence[nn.Module], input_shape: Sequence[int], *, time_cap_s: float
) -> tuple[list[float], str]:
    """ONNX Runtime median latencies (1 thread, batch 1) of ``models``, their runs interleaved."""
    from slimforge.hardware import LatencyProtocol, measure_latencies

    protocol = LatencyProtocol(
        time_cap_s=time_cap_s, min_time_s=min(0.5, time_cap_s), warmup_s=min(0.2, time_cap_s), warmup_runs=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = measure_latencies(list(models), tuple(input_shape), threads=1, protocol=protocol)
    return [r.latency_ms_median for r in results], results[0].conditions() if results else ""
