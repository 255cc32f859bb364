"""The accuracy estimate every policy search scores its candidates with, and its noise.

The estimate (:func:`estimate_accuracy`) is cheap by design and configurable (:class:`EstimateConfig`):
optionally a few SGD steps, or a few distillation steps from the unpruned network (soft targets,
Hinton et al. 2015), then batch-norm re-calibration on a few hundred training images (the statistics
of a pruned or quantized network differ from the original's, and re-calibrating them recovers most
of the accuracy a finetune would at once; Li et al., "EagleEye", ECCV 2020), then a score from
:data:`SCORES`: top-1 accuracy on the *validation* split, or fidelity to the unpruned network's
output distribution on a larger, label-free set. The test split is only ever used to report the
final models.

:func:`estimate_noise` measures how much the estimate of one policy moves: repeated with other image
draws (re-calibration images, training batches, the training part of the score set), plus the
sampling error of the score over its images, which no repeat on the same images can show.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from slimforge.compress.auto._settings import EstimateConfig
from slimforge.data import DatasetSplits
from slimforge.io import JsonRecord
from slimforge.registry import Registry

__all__ = ["SCORES", "EstimateData", "EstimateNoise", "estimate_accuracy", "estimate_noise", "has_batchnorm"]

#: the distillation temperature of the estimate's distillation steps.
TEMPERATURE = 4.0


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer that tracks running statistics."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules()
    )


@torch.no_grad()
def _probabilities(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([torch.softmax(model(x), 1) for x in images.split(batch_size)])


@dataclass(frozen=True, eq=False)
class EstimateData:
    """The tensors :func:`estimate_accuracy` uses, drawn once so every candidate sees the same images.

    ``score_images`` / ``teacher_probs`` (the unpruned network's output distribution on them) are set
    when the estimate needs the teacher (``fidelity`` score, distillation steps); ``teacher`` is then
    the unpruned network (never changed).
    """

    recal_images: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    splits: DatasetSplits
    seed: int
    teacher: nn.Module | None = None
    score_images: torch.Tensor | None = None
    teacher_probs: torch.Tensor | None = None

    @classmethod
    def from_splits(
        cls, splits: DatasetSplits, config: EstimateConfig, seed: int, teacher: nn.Module | None = None
    ) -> EstimateData:
        """Draw the re-calibration images (training split) and the validation images with ``seed``.

        ``teacher`` (the unpruned network) is required when ``config.needs_teacher``.
        """
        from slimforge.data import sample_batch
        from slimforge.errors import InvalidInputError

        n_recal = min(config.recal_images, len(splits.train))
        recal = sample_batch(splits.train, n_recal, seed=seed)[0] if n_recal else torch.empty(0)
        n_val = len(splits.val) if config.val_images == 0 else min(config.val_images, len(splits.val))
        images, labels = sample_batch(splits.val, n_val, seed=seed + 1)
        if not config.needs_teacher:
            return cls(recal, images, labels, splits, seed)
        if teacher is None:
            raise InvalidInputError("this estimate compares with the unpruned network: give teacher=")
        score = images
        n_train = min(config.score_images, len(splits.train))
        if n_train:
            score = torch.cat([images, sample_batch(splits.train, n_train, seed=seed + 2)[0]])
        return cls(recal, images, labels, splits, seed, teacher, score, _probabilities(teacher, score))


# ---- scores: (model, data) -> (value %, per-image values for the sampling error) -----------------------


@torch.no_grad()
def _top1(model: nn.Module, data: EstimateData) -> np.ndarray:
    model.eval()
    hits = [
        (model(x).argmax(1) == y).float()
        for x, y in zip(data.val_images.split(256), data.val_labels.split(256))
    ]
    return 100.0 * torch.cat(hits).double().numpy() if hits else np.zeros(0)


def _fidelity(model: nn.Module, data: EstimateData) -> np.ndarray:
    assert data.score_images is not None and data.teacher_probs is not None
    probs = _probabilities(model, data.score_images)
    return 100.0 * torch.minimum(probs, data.teacher_probs).sum(1).double().numpy()


#: score name -> function(model, data) -> per-image values (%); the score is their mean.
SCORES: Registry[Callable[[nn.Module, EstimateData], np.ndarray]] = Registry("estimate score")
SCORES.register("top1", _top1)
SCORES.register("fidelity", _fidelity)


def _steps(model: nn.Module, data: EstimateData, config: EstimateConfig, steps: int, distill: bool) -> None:
    from slimforge.data import make_loader

    loader = make_loader(data.splits.train, config.batch_size, train=True, seed=data.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.finetune_lr, momentum=0.9, nesterov=True)
    teacher = data.teacher.eval() if distill and data.teacher is not None else None
    model.train()
    step, epoch = 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(data.seed)  # dropout draws: the same candidate gets the same estimate
        while step < steps:
            for images, labels in loader.epoch(epoch):
                logits = model(images)
                if teacher is not None:
                    with torch.no_grad():
                        soft = torch.softmax(teacher(images) / TEMPERATURE, 1)
                    loss = (
                        nn.functional.kl_div(
                            torch.log_softmax(logits / TEMPERATURE, 1), soft, reduction="batchmean"
                        )
                        * TEMPERATURE**2
                    )
                else:
                    loss = nn.functional.cross_entropy(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step >= steps:
                    break
            epoch += 1
    model.zero_grad(set_to_none=True)
    model.eval()


def _per_image(model: nn.Module, data: EstimateData, config: EstimateConfig) -> np.ndarray:
    from slimforge.supernet import recalibrate_bn

    if config.finetune_steps:
        _steps(model, data, config, config.finetune_steps, distill=False)
    if config.distill_steps:
        _steps(model, data, config, config.distill_steps, distill=True)
    if len(data.recal_images) and has_batchnorm(model):
        recalibrate_bn(model, data.recal_images, batch_size=config.batch_size)
    return SCORES.get(config.score)(model, data)


def estimate_accuracy(model: nn.Module, data: EstimateData, config: EstimateConfig) -> float:
    """The search's estimate (%) of ``model``: optional SGD / distillation steps, BN re-calibration, score.

    ``model`` is changed in place (its BN statistics, and its weights when steps are taken).
    """
    values = _per_image(model, data, config)
    return float(values.mean()) if len(values) else 0.0


@dataclass(frozen=True)
class EstimateNoise(JsonRecord):
    """How much one policy's estimate moves.

    ``values_pct`` are the estimate repeated with other image draws (the search's own draw first);
    ``draw_std_pct`` their standard deviation; ``sampling_se_pct`` the standard error of the score
    over its images (what a repeat on the same images cannot show); ``std_pct`` both together.
    """

    values_pct: tuple[float, ...]
    draw_std_pct: float
    sampling_se_pct: float
    std_pct: float


def estimate_noise(
    build: Callable[[], nn.Module],
    splits: DatasetSplits,
    config: EstimateConfig,
    seed: int,
    *,
    repeats: int,
    teacher: nn.Module | None = None,
) -> EstimateNoise:
    """The estimate of the model ``build()`` returns, repeated ``repeats`` times with other draws.

    Draw ``k`` uses seed ``seed + 1000 * k`` (draw 0 is the search's own). The validation images of
    the ``top1`` score are the whole split unless ``config.val_images`` is set, so there only the
    re-calibration images and the training batches change; :attr:`EstimateNoise.sampling_se_pct`
    adds the error of scoring on a finite sample of images.
    """
    values, se = [], 0.0
    for k in range(max(1, repeats)):
        data = EstimateData.from_splits(splits, config, seed + 1000 * k, teacher=teacher)
        per_image = _per_image(build(), data, config)
        values.append(float(per_image.mean()) if len(per_image) else 0.0)
        if k == 0 and len(per_image) > 1:
            se = float(per_image.std(ddof=1) / math.sqrt(len(per_image)))
    draw = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return EstimateNoise(tuple(values), draw, se, math.sqrt(draw**2 + se**2))
