"""``supernet_accuracy``: a sub-network's accuracy with the weights it inherits from a trained supernet.

The scoring is :class:`slimforge.supernet.SupernetScorer`'s, the one ``supernet rank`` measures: a
copy of the inherited weights fine-tuned for ``finetune_steps`` seeded training batches, batch norm
as the supernet's run says (``eval_bn``: statistics re-calibrated on ``bn_images`` training images
drawn once with ``seed``, or each evaluation batch's own), then the sub-network
classifies the test part of the data (the validation part when there is none, or when
``split="val"``, which keeps the test images out of the search), or a seeded subset of
``eval_images`` of it. The supernet and the images are loaded on first use and left out of a
pickle, so the evaluator travels to worker processes as paths and numbers and each worker loads
them once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import BatchEvaluator
from slimforge.spaces import Genome, SearchSpace, get_space

__all__ = ["SupernetAccuracyEvaluator"]


def _positive(name: str, value: Any, *, zero: bool = False) -> int:
    lowest = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"supernet_accuracy: {name} must be an integer >= {lowest}, got {value!r}")
    return value


class SupernetAccuracyEvaluator(BatchEvaluator):
    """``error`` (100 - accuracy %), ``accuracy`` (%) and ``loss`` (mean cross-entropy, nats) of a
    genome's sub-network of a trained supernet.

    Args:
        space: the search space; its genomes must be the checkpoint's (same space and genes).
        checkpoint: a run directory of ``slimforge supernet train`` (``config.json``, ``checkpoint.pt``).
        data: data spec to evaluate on; default the one the supernet was trained on.
        split: ``"test"`` (the validation part where the data has no test part) or ``"val"``.
        val_fraction: share of the training part held out as validation; default the training run's
            (so ``split="val"`` then gives the images the supernet did not train on).
        eval_images: evaluate on a seeded subset of this many test images; None takes them all.
        bn_images: training images for batch-norm re-calibration; 0 keeps the supernet's statistics.
        batch_size: evaluation batch size (with ``bn="batch"`` also the statistics' batch).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        seed: draws the re-calibration images and the evaluation subset.
        bn: ``"recalibrate"`` or ``"batch"``; None takes the supernet run's ``eval_bn``.
        finetune_steps: training batches a copy of each sub-network is fine-tuned on before it is
            scored; None takes :data:`slimforge.supernet.scoring.FINETUNE_STEPS`, 0 none.
        finetune_lr: that fine-tune's learning rate; None takes ``FINETUNE_LR``.
    """

    _transient = ("_scorer",)

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
        bn: str | None = None,
        finetune_steps: int | None = None,
        finetune_lr: float | None = None,
    ) -> None:
        from slimforge.supernet.bn import BN_MODES
        from slimforge.supernet.checkpoint import read_run_config

        super().__init__(space, ("error", "accuracy", "loss"))
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
        if bn is not None and bn not in BN_MODES:
            raise InvalidInputError(f"supernet_accuracy: bn {bn!r} must be one of {', '.join(BN_MODES)}")
        self.bn = bn
        from slimforge.supernet.scoring import FINETUNE_LR, FINETUNE_STEPS

        self.finetune_steps = _positive(
            "finetune_steps", FINETUNE_STEPS if finetune_steps is None else finetune_steps, zero=True
        )
        lr = FINETUNE_LR if finetune_lr is None else finetune_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
            raise InvalidInputError(f"supernet_accuracy: finetune_lr must be a number > 0, got {lr!r}")
        self.finetune_lr = float(lr)
        self.seed = _positive("seed", seed, zero=True)
        self._scorer: Any = None

    def _load(self) -> Any:
        """The :class:`~slimforge.supernet.SupernetScorer`, made on first use in this process."""
        if self._scorer is None:
            from slimforge.supernet import SupernetScorer

            self._scorer = SupernetScorer(
                self.checkpoint,
                data=self.data,
                split=self.split,
                val_fraction=self.val_fraction,
                bn=self.bn,
                recal_images=self.bn_images,
                eval_images=self.eval_images,
                batch_size=self.batch_size,
                finetune_steps=self.finetune_steps,
                finetune_lr=self.finetune_lr,
                device=self.device,
                seed=self.seed,
            )
        return self._scorer

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        # One call: the supernet's statistics are saved and restored once for the whole batch.
        out = []
        for score in self._load().score(genomes):
            accuracy = 100.0 * score.accuracy
            out.append({"error": 100.0 - accuracy, "accuracy": accuracy, "loss": score.loss})
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
            "bn": self.bn,
            "finetune_steps": self.finetune_steps,
            "finetune_lr": self.finetune_lr,
            "seed": self.seed,
        }
