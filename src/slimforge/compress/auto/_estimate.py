"""The accuracy estimate every policy search scores its candidates with.

The estimate (:func:`estimate_accuracy`) is cheap by design: optionally a few SGD steps on training
images, then batch-norm re-calibration on a few hundred training images (the statistics of a pruned
or quantized network differ from the original's, and re-calibrating them recovers most of the
accuracy a finetune would at once; Li et al., "EagleEye", ECCV 2020), then top-1 accuracy on the
*validation* split. The test split is only ever used to report the final models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from slimforge.compress.auto._settings import EstimateConfig
from slimforge.data import DatasetSplits

__all__ = ["EstimateData", "estimate_accuracy", "has_batchnorm"]


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer that tracks running statistics."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules()
    )


@dataclass(frozen=True, eq=False)
class EstimateData:
    """The tensors :func:`estimate_accuracy` uses, drawn once so every candidate sees the same images."""

    recal_images: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    splits: DatasetSplits
    seed: int

    @classmethod
    def from_splits(cls, splits: DatasetSplits, config: EstimateConfig, seed: int) -> EstimateData:
        """Draw the re-calibration images (training split) and the validation images with ``seed``."""
        from slimforge.data import sample_batch

        n_recal = min(config.recal_images, len(splits.train))
        recal = sample_batch(splits.train, n_recal, seed=seed)[0] if n_recal else torch.empty(0)
        n_val = len(splits.val) if config.val_images == 0 else min(config.val_images, len(splits.val))
        images, labels = sample_batch(splits.val, n_val, seed=seed + 1)
        return cls(recal, images, labels, splits, seed)


@torch.no_grad()
def _top1(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / max(1, len(labels))


def _sgd_steps(model: nn.Module, data: EstimateData, config: EstimateConfig) -> None:
    from slimforge.data import make_loader

    loader = make_loader(data.splits.train, config.batch_size, train=True, seed=data.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.finetune_lr, momentum=0.9, nesterov=True)
    model.train()
    step, epoch = 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(data.seed)  # dropout draws: the same candidate gets the same estimate
        while step < config.finetune_steps:
            for images, labels in loader.epoch(epoch):
                loss = nn.functional.cross_entropy(model(images), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step >= config.finetune_steps:
                    break
            epoch += 1
    model.zero_grad(set_to_none=True)
    model.eval()


def estimate_accuracy(model: nn.Module, data: EstimateData, config: EstimateConfig) -> float:
    """The search's accuracy estimate (%) of ``model``: SGD steps, BN re-calibration, validation top-1.

    ``model`` is changed in place (its BN statistics, and its weights when ``finetune_steps`` > 0).
    """
    from slimforge.supernet import recalibrate_bn

    if config.finetune_steps:
        _sgd_steps(model, data, config)
    if len(data.recal_images) and has_batchnorm(model):
        recalibrate_bn(model, data.recal_images, batch_size=config.batch_size)
    return _top1(model, data.val_images, data.val_labels)
