"""One way to score architectures with a trained supernet, shared by ``supernet rank``, the search's
``supernet:DIR`` accuracy and ``slimforge run``'s estimator audit.

A :class:`SupernetScorer` loads a run directory once and scores genomes with inherited weights under
one protocol: a copy of each architecture's inherited weights is fine-tuned for a few training
batches (:data:`FINETUNE_STEPS`, the same seeded batches for every architecture), batch norm is then
normalised as the run says (``TrainConfig.eval_bn``: running statistics recalibrated on the same
``recal_images`` training images, or each evaluation batch's own statistics), and the network
classifies the data's test or validation part (optionally a seeded subset). The supernet is left as
it was after every call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import Supernet
from slimforge.supernet.bn import BN_MODES
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData, SubnetScore, score_many

__all__ = ["FINETUNE_LR", "FINETUNE_STEPS", "SupernetScorer"]

#: The scoring protocol's defaults: each architecture's inherited weights are fine-tuned for this
#: many steps of one training batch at this learning rate before it is scored (0 steps: as inherited).
FINETUNE_STEPS = 8
FINETUNE_LR = 0.01


def _count(name: str, value: Any, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"{name} must be an integer >= {lowest}, got {value!r}")
    return value


class SupernetScorer:
    """Inherited-weight accuracy and loss of architectures from a ``slimforge supernet train`` directory.

    Args:
        checkpoint: the run directory (``config.json``, ``checkpoint.pt``).
        data: data spec to evaluate on; default the run's.
        split: ``"test"`` (the validation part when the data has none) or ``"val"``.
        val_fraction: share of the training part held out as validation; default the run's (so
            ``split="val"`` gives images a ``hold_out_val`` supernet did not train on).
        bn: one of :data:`~slimforge.supernet.bn.BN_MODES`; None takes the run's ``eval_bn``.
        recal_images: training images for recalibration (``bn="recalibrate"``); 0 keeps the
            supernet's own running statistics.
        eval_images: score on a seeded subset of this many images of the split; None takes them all.
        batch_size: evaluation batch size (with ``bn="batch"`` it also sets the statistics' batch).
        finetune_steps: training batches (of the run's batch size, seeded) each architecture's
            inherited weights are fine-tuned on before scoring, on a copy; 0 scores them as inherited.
        finetune_lr: the fine-tune's learning rate (SGD, momentum 0.9).
        device: torch device.
        seed: draws the recalibration images and the evaluation subset.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        *,
        data: str | None = None,
        split: str = "test",
        val_fraction: float | None = None,
        bn: str | None = None,
        recal_images: int = 256,
        eval_images: int | None = None,
        batch_size: int = 256,
        finetune_steps: int = FINETUNE_STEPS,
        finetune_lr: float = FINETUNE_LR,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        from slimforge.data import load_dataset
        from slimforge.supernet.checkpoint import load_supernet
        from slimforge.supernet.train import resolve_device

        if split not in ("test", "val"):
            raise InvalidInputError(f"split {split!r} must be 'test' or 'val'")
        if bn is not None and bn not in BN_MODES:
            raise InvalidInputError(f"bn {bn!r} must be one of {', '.join(BN_MODES)}")
        if val_fraction is not None and (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0.0 < val_fraction < 1.0
        ):
            raise InvalidInputError(f"val_fraction must be a number between 0 and 1, got {val_fraction!r}")
        _count("recal_images", recal_images, 0)
        _count("batch_size", batch_size, 1)
        _count("seed", seed, 0)
        if eval_images is not None:
            _count("eval_images", eval_images, 1)
        self.checkpoint = Path(checkpoint)
        self.device = resolve_device(device)
        supernet, config, _ = load_supernet(self.checkpoint, self.device)
        self.supernet: Supernet = supernet
        self.config: TrainConfig = config
        spec = data or config.data
        splits = load_dataset(
            spec, val_fraction=config.val_fraction if val_fraction is None else val_fraction, seed=config.seed
        )
        if splits.num_classes != supernet.num_classes:
            raise InvalidInputError(
                f"data {spec!r} has {splits.num_classes} classes but the supernet {self.checkpoint} was "
                f"trained for {supernet.num_classes}; evaluate on data with the same classes"
            )
        self.split_used = "test" if split == "test" and splits.test is not None else "val"
        eval_data = EvalData.from_splits(
            splits,
            split=split,
            recal_images=recal_images,
            seed=seed,
            device=self.device,
            batch_size=batch_size,
            # Recalibration statistics depend on the batch size: keep the training one.
            recal_batch_size=config.batch_size,
            bn=config.eval_bn if bn is None else bn,
            finetune_steps=finetune_steps,
            finetune_lr=finetune_lr,
        )
        if eval_images is not None and eval_images < len(eval_data.labels):
            # A seeded subset, in the split's order, so every architecture sees the same images.
            keep = np.sort(np.random.default_rng(seed).choice(len(eval_data.labels), eval_images, replace=False))
            idx = torch.as_tensor(keep, dtype=torch.long, device=eval_data.labels.device)
            eval_data = EvalData(
                eval_data.recal_images,
                eval_data.images[idx],
                eval_data.labels[idx],
                batch_size=eval_data.batch_size,
                recal_batch_size=eval_data.recal_batch_size,
                bn=eval_data.bn,
                finetune_batches=eval_data.finetune_batches,
                finetune_lr=eval_data.finetune_lr,
            )
        self.data = eval_data

    @property
    def bn(self) -> str:
        """The batch-norm mode scores are computed with."""
        return self.data.bn

    def score(
        self, genomes: Sequence[Sequence[int]], *, progress: Callable[[int], None] | None = None
    ) -> list[SubnetScore]:
        """Accuracy (fraction) and mean cross-entropy of each genome's sub-network, in order."""
        return score_many(self.supernet, genomes, self.data, progress=progress)
