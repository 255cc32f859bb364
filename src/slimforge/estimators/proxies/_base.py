"""The zero-cost proxy base: a pure function of (model, one minibatch) -> float.

:meth:`Proxy.score` validates the batch, scores a deep copy of the model (so the caller's
parameters, buffers, gradients, ``requires_grad`` flags and train/eval mode are never touched) and
returns a float. A proxy that cannot run on a model raises :class:`ProxyNotApplicableError`;
batch scoring turns that into a warning and a "skipped" result.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = [
    "Batch",
    "Proxy",
    "ProxyNotApplicableError",
    "activation_modules",
    "norm_modules",
    "split_batch",
    "weight_modules",
]

#: a minibatch: images (B, C, H, W), or ``(images, labels)`` with int64 labels (B,).
Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | list

#: activations whose sign pattern defines a linear region (NASWOT's binary codes).
_RELU_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)


class ProxyNotApplicableError(SlimforgeError):
    """A proxy that cannot score this model (no ReLU for NASWOT, no labels for SNIP, ...)."""


def weight_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv and linear layers with a weight: what the pruning-at-init proxies score."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and m.weight is not None
    ]


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """ReLU-family activation modules (ReLU, ReLU6, LeakyReLU)."""
    return [m for m in model.modules() if isinstance(m, _RELU_TYPES)]


def norm_modules(model: nn.Module) -> list[nn.Module]:
    """Batch-norm layers."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def split_batch(images: torch.Tensor, labels: torch.Tensor | None, parts: int) -> Iterator[tuple]:
    """Cut a batch into ``parts`` near-equal consecutive pieces (for proxies that need several batches)."""
    for idx in torch.arange(len(images)).tensor_split(parts):
        yield images[idx], (None if labels is None else labels[idx])


class Proxy(ABC):
    """A zero-cost accuracy proxy: higher score = architecture expected to train to higher accuracy.

    Subclasses set :attr:`name`, :attr:`needs_labels` (the loss needs class labels) and implement
    :meth:`_score`, which receives a private deep copy of the model in train mode with every
    parameter requiring grad, so it may do anything to it.
    """

    #: registry name.
    name: ClassVar[str] = ""
    #: whether :meth:`score` needs ``(images, labels)`` rather than images alone.
    needs_labels: ClassVar[bool] = False
    #: fewest images in the batch (a correlation over samples needs at least two).
    min_batch: ClassVar[int] = 1

    @abstractmethod
    def _score(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator
    ) -> float:
        """Score a private copy of the model on a validated batch."""

    def check(self, model: nn.Module) -> None:
        """Raise :class:`ProxyNotApplicableError` if this proxy cannot score ``model`` (default: it can)."""

    def score(self, model: nn.Module, batch: Batch, *, seed: int = 0) -> float:
        """Score ``model`` on one minibatch without changing it.

        Args:
            model: any ``nn.Module`` mapping (B, C, H, W) images to (B, classes) logits.
            batch: images, or ``(images, labels)``; labels are needed when :attr:`needs_labels`.
            seed: seeds any random choice the proxy makes (the result is a function of it).

        Returns:
            The score as a float; NaN or infinity are returned as they come, never clipped.
        """
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"proxy {self.name!r} scores an nn.Module, got {type(model).__name__}")
        images, labels = _unpack(batch, self.name)
        if len(images) < self.min_batch:
            raise InvalidInputError(
                f"proxy {self.name!r} needs a batch of at least {self.min_batch} images, got {len(images)}"
            )
        if self.needs_labels and labels is None:
            raise ProxyNotApplicableError(
                f"proxy {self.name!r} needs class labels: pass (images, labels) as the batch"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative int, got {seed!r}")
        self.check(model)
        work = copy.deepcopy(model)
        # The copy is ours: put it in the state every proxy assumes (batch statistics, all gradients).
        work.train()
        for p in work.parameters():
            p.requires_grad_(True)
            p.grad = None
        generator = torch.Generator().manual_seed(seed)
        value = self._score(work, images, labels, generator)
        return float(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _unpack(batch: Batch, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        images, labels = batch, None
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        images, labels = batch
    else:
        raise InvalidInputError(
            f"proxy {name!r}: a batch is an image tensor or (images, labels), got {type(batch).__name__}"
        )
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or not images.is_floating_point():
        raise InvalidInputError(
            f"proxy {name!r}: images must be a float tensor (B, C, H, W), got {images!r:.80}"
        )
    if labels is not None and (
        not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1] or labels.is_floating_point()
    ):
        raise InvalidInputError(
            f"proxy {name!r}: labels must be an int tensor of shape ({len(images)},), "
            f"got {getattr(labels, 'shape', labels)!r}"
        )
    # Scoring must not see the caller's graph or let a proxy write into the caller's tensor.
    images = images.detach().clone()
    labels = None if labels is None else labels.detach().clone().long()
    return images, labels
