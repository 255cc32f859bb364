"""Standalone training of one sub-network with the supernet's own recipe, the reference a supernet's
ranking is measured against when no accuracy table exists (or to compare at equal images).

The network is ``space.build(genome)`` initialised from the run's seed and trained with the
:class:`TrainConfig`'s batch size, SGD settings, cosine schedule, gradient clip, data order and
augmentation, so a supernet and its standalone reference differ only in weight sharing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from slimforge.data import DatasetSplits, make_loader
from slimforge.spaces import Genome, SearchSpace
from slimforge.supernet._trainer import cosine_schedule
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData

__all__ = ["StandaloneScore", "accuracy_of", "train_standalone"]


@dataclass(frozen=True)
class StandaloneScore:
    """A standalone-trained network's accuracy (fraction in [0, 1]) and loss (nats) on an evaluation split."""

    accuracy: float
    loss: float
    train_time_s: float
    images_trained: int


@torch.no_grad()
def accuracy_of(net: nn.Module, data: EvalData) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``net`` in eval mode on ``data``'s images."""
    was_training = net.training
    net.eval()
    correct, loss = 0, 0.0
    try:
        for images, labels in zip(data.images.split(data.batch_size), data.labels.split(data.batch_size)):
            logits = net(images)
            correct += int((logits.argmax(dim=1) == labels).sum())
            loss += float(nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
    finally:
        net.train(was_training)
    return correct / len(data.labels), loss / len(data.labels)


def train_standalone(
    space: SearchSpace,
    genome: Genome,
    splits: DatasetSplits,
    config: TrainConfig,
    data: EvalData,
    *,
    device: torch.device | str = "cpu",
) -> StandaloneScore:
    """Train ``space.build(genome)`` from scratch with ``config``'s recipe and score it on ``data``.

    Trains on the training part (and the validation part unless ``config.hold_out_val``), exactly
    the images an SPOS supernet of ``config`` trains on.
    """
    from slimforge.supernet.train import training_part

    genome = space.validate(genome)
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = space.build(genome, num_classes=splits.num_classes)
    net = net.to(dev, memory_format=torch.channels_last).train()
    loader = make_loader(training_part(splits, config), config.batch_size, train=True, seed=config.seed)
    total = len(loader) * config.epochs
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    scheduler = cosine_schedule(optimizer, total)
    t0, seen = time.perf_counter(), 0
    for epoch in range(config.epochs):
        for images, labels in loader.epoch(epoch):
            images = images.to(dev).contiguous(memory_format=torch.channels_last)
            loss = nn.functional.cross_entropy(net(images), labels.to(dev))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            seen += len(labels)
    wall = time.perf_counter() - t0
    accuracy, mean_loss = accuracy_of(net, data)
    return StandaloneScore(accuracy=accuracy, loss=mean_loss, train_time_s=wall, images_trained=seen)
