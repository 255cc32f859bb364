"""``supernet_accuracy``: a sub-network's accuracy with the weights it inherits from a trained supernet.

The evaluation follows :func:`slimforge.supernet.rank_supernet`: batch-norm statistics are
re-calibrated on ``bn_images`` training images (drawn once with ``seed``, the same for every
architecture), then the sub-network classifies the test part of the data (the validation part when
there is none, or when ``split="val"``, which keeps the test images out of the search), or a seeded
subset of ``eval_images`` of it. The supernet and the images are loaded
on first use and left out of a pickle, so the evaluator travels to worker processes as paths and
numbers and each worker loads them once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace, get_space

__all__ = ["SupernetAccuracyEvaluator"]


def _positive(name: str, value: Any, *, zero: bool = False) -> int:
    lowest = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"supernet_accuracy: {name} must be an integer >= {lowest}, got {value!r}")
    return value


class SupernetAccuracyEvaluator(Evaluator):
    """``error`` (100 - accuracy %) and ``accuracy`` (%) of a genome's sub-network of a trained supernet.

    Args:
        space: the search space; its genomes must be the checkpoint's (same space and genes).
        checkpoint: a run directory of ``slimforge supernet train`` (``config.json``, ``checkpoint.pt``).
        data: data spec to evaluate on; default the one the supernet was trained on.
        split: ``"test"`` (the validation part where the data has no test part) or ``"val"``.
        val_fraction: share of the training part held out as validation; default the training run's
            (so ``split="val"`` then gives the images the supernet did not train on).
        eval_images: evaluate on a seeded subset of this many test images; None takes them all.
        bn_images: training images for batch-norm re-calibration; 0 keeps the supernet's statistics.
        batch_size: evaluation batch size (only speed depends on it).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        seed: draws the re-calibration images and the evaluation subset.
    """

    _transient = ("_supernet", "_data")

    def __init__(
        self,
        space: SearchSpace,
        checkpoint: str | os.PathLike,
        data: str | None = None,
        split: str = "test",
        val_fraction: float | None = None,
        eval_images: int | None = None,
        bn_images: int = 256,
        batch_size: int = 256,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        from slimforge.supernet.checkpoint import read_run_config

        super().__init__(space, ("error", "accuracy"))
        self.checkpoint = Path(checkpoint)
        config, self.num_classes, _ = read_run_config(self.checkpoint)
        trained = get_space(config.space, **config.space_kwargs)
        if config.space != space.name or list(trained.num_choices) != list(space.num_choices):
            raise InvalidInputError(
                f"supernet {self.checkpoint} was trained on {trained!r}, whose genomes are not those of "
                f"{space!r}; search the space it was trained on (--space {config.space})"
            )
        self.data = data
        if split not in ("test", "val"):
            raise InvalidInputError(f"supernet_accuracy: split {split!r} must be 'test' or 'val'")
        self.split = split
        if val_fraction is not None and (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0.0 < val_fraction < 1.0
        ):
            raise InvalidInputError(
                f"supernet_accuracy: val_fraction must be a number between 0 and 1, got {val_fraction!r}"
            )
        self.val_fraction = val_fraction
        self.eval_images = None if eval_images is None else _positive("eval_images", eval_images)
        self.bn_images = _positive("bn_images", bn_images, zero=True)
        self.batch_size = _positive("batch_size", batch_size)
        self.device = str(device)
        self.seed = _positive("seed", seed, zero=True)
        self._supernet: Any = None
        self._data: Any = None

    def _load(self) -> tuple[Any, Any]:
        """The supernet and its evaluation data, loaded on first use in this process."""
        if self._supernet is None or self._data is None:
            from slimforge.data import load_dataset
            from slimforge.supernet import EvalData, load_supernet, resolve_device

            dev = resolve_device(self.device)
            supernet, config, _ = load_supernet(self.checkpoint, dev)
            spec = self.data or config.data
            val_fraction = config.val_fraction if self.val_fraction is None else self.val_fraction
            splits = load_dataset(spec, val_fraction=val_fraction, seed=config.seed)
            if splits.num_classes != supernet.num_classes:
                raise InvalidInputError(
                    f"data {spec!r} has {splits.num_classes} classes but the supernet {self.checkpoint} "
                    f"was trained for {supernet.num_classes}; evaluate on data with the same classes"
                )
            data = EvalData.from_splits(
                splits,
                split=self.split,
                recal_images=self.bn_images,
                seed=self.seed,
                device=dev,
                batch_size=self.batch_size,
                # Re-calibration statistics depend on the batch size: keep the training one.
                recal_batch_size=config.batch_size,
            )
            if self.eval_images is not None and self.eval_images < len(data.labels):
                # A seeded subset, in the split's order, so every architecture sees the same images.
                keep = np.sort(
                    np.random.default_rng(self.seed).choice(len(data.labels), self.eval_images, replace=False)
                )
                idx = torch.as_tensor(keep, dtype=torch.long, device=data.labels.device)
                data = EvalData(
                    data.recal_images,
                    data.images[idx],
                    data.labels[idx],
                    batch_size=data.batch_size,
                    recal_batch_size=data.recal_batch_size,
                )
            self._supernet, self._data = supernet, data
        return self._supernet, self._data

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        return self._evaluate_many([genome])[0]

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        # One call: the supernet's statistics are saved and restored once for the whole batch.
        from slimforge.supernet import score_many

        supernet, data = self._load()
        out = []
        for score in score_many(supernet, genomes, data):
            accuracy = 100.0 * score.accuracy
            out.append({"error": 100.0 - accuracy, "accuracy": accuracy})
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "checkpoint": os.path.abspath(self.checkpoint),
            "data": self.data,
            "split": self.split,
            "val_fraction": self.val_fraction,
            "eval_images": self.eval_images,
            "bn_images": self.bn_images,
            "seed": self.seed,
        }

