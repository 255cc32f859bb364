"""Batch-norm re-calibration: running statistics recomputed for the sub-network being evaluated.

A supernet's running statistics mix every path that went through a layer, so a sub-network's
accuracy with inherited weights is only meaningful after its own statistics are recomputed (Guo et
al., SPOS, 2020; Yu et al., BigNAS, 2020): reset them, then forward a few hundred training images in
train mode with ``momentum=None`` (a cumulative average over the batches, not an exponential one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from slimforge.errors import InvalidInputError

__all__ = ["BN_MODES", "batch_norms", "recalibrate_bn", "restore_bn_stats", "save_bn_stats"]


#: How batch norm normalises while a sub-network is scored: ``recalibrate`` recomputes running
#: statistics on recalibration images, then evaluates in eval mode; ``batch`` normalises each
#: evaluation batch with its own statistics (NAS-Bench-201's weight-sharing baselines).
BN_MODES = ("recalibrate", "batch")


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model`` that track running statistics."""
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def save_bn_stats(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Copies of every batch-norm layer's (running_mean, running_var, num_batches_tracked)."""
    return [
        (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in batch_norms(model)
    ]


def restore_bn_stats(model: nn.Module, saved: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
    """Put back what :func:`save_bn_stats` copied."""
    with torch.no_grad():
        for m, (mean, var, count) in zip(batch_norms(model), saved, strict=True):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)


def _chunks(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        return images.split(batch_size)
    return images


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    images: torch.Tensor | Iterable[torch.Tensor],
    *,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 64,
) -> None:
    """Recompute the running statistics of every batch-norm layer of ``model`` from ``images``.

    Layers the forward does not reach keep reset statistics. Weights are untouched; the model's
    mode and each layer's momentum are restored afterwards.

    Args:
        model: the module whose batch-norm statistics are recomputed (in place).
        images: pre-normalised images (N, C, H, W), cut into ``batch_size`` batches, or an iterable of batches.
        forward: how to run a batch (e.g. ``lambda x: supernet(x, genome)``); default ``model``.
        batch_size: batch size when ``images`` is one tensor; keep it near the training batch size,
            since batch statistics depend on it.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    layers = batch_norms(model)
    was_training = model.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    run = model if forward is None else forward
    model.train()
    seen = 0
    try:
        for batch in _chunks(images, batch_size):
            run(batch)
            seen += len(batch)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    if seen == 0:
        raise InvalidInputError("batch-norm re-calibration needs at least one image")
