"""The straight-through estimator's latent weights, shared by the low-bit training hooks.

The forward and backward passes run with quantized weights; the optimizer's step updates a float
*latent* copy of each weight with the gradient taken at the quantized one (Bengio et al., 2013),
which is then quantized again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from slimforge.training import TrainHook

__all__ = ["LatentWeightHook"]


class LatentWeightHook(TrainHook, ABC):
    """Train quantized weights through float latent copies (straight-through estimator).

    Subclasses say which weights (:meth:`_weights`) and how each is quantized (:meth:`_quantized`).
    """

    def __init__(self) -> None:
        self.latent: dict[str, torch.Tensor] = {}

    @abstractmethod
    def _weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Hook: the trained weights by layer path."""

    @abstractmethod
    def _quantized(self, name: str, latent: torch.Tensor) -> torch.Tensor:
        """Hook: the quantized version of layer ``name``'s latent weight."""

    def _new_latent(self, w: torch.Tensor) -> torch.Tensor:
        """The latent weight the step left in ``w`` (a copy)."""
        return w.detach().clone()

    def after_backward(self, model: nn.Module) -> None:
        # Put the latent weights in place so the optimizer's step updates them with the gradient
        # taken at the quantized weights (straight-through).
        with torch.no_grad():
            for n, w in self._weights(model).items():
                w.copy_(self.latent[n])

    def after_step(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, w in self._weights(model).items():
                latent = self._new_latent(w)
                self.latent[n] = latent
                w.copy_(self._quantized(n, latent))
