"""ZiCo: the inverse coefficient of variation of gradients (Li et al., ICLR 2023)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.estimators.proxies._base import Proxy, ProxyNotApplicableError, split_batch, weight_modules

__all__ = ["ZicoProxy"]


class ZicoProxy(Proxy):
    """ZiCo = Σ_layers log Σ_θ E[|g_θ|] / std(g_θ), the statistics taken over ``parts`` sub-batches.

    High when gradients are large and agree across batches (fast, stable convergence). The one
    minibatch is split into ``parts`` sub-batches (the paper uses separate minibatches); weights
    whose gradient does not vary are left out, and a layer whose sum is zero contributes nothing.
    A network without any such layer scores ``-inf``.

    Args:
        parts: number of sub-batches (at least 2).
    """

    name = "zico"
    needs_labels = True

    def __init__(self, parts: int = 2) -> None:
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 2:
            raise InvalidInputError(f"zico needs at least 2 sub-batches, got parts={parts!r}")
        self.parts = parts
        self.min_batch = 2 * parts  # batch norm needs two images per sub-batch

    def check(self, model: nn.Module) -> None:
        if not weight_modules(model):
            raise ProxyNotApplicableError("proxy 'zico' scores conv/linear weights; this model has none")

    def _score(self, model, images, labels, generator) -> float:
        layers = weight_modules(model)
        weights = [m.weight for _, m in layers]
        per_layer: list[list[torch.Tensor]] = [[] for _ in layers]
        for x, y in split_batch(images, labels, self.parts):
            grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
            for store, w, g in zip(per_layer, weights, grads):
                store.append(torch.zeros_like(w) if g is None else g.detach())
        score, contributing = 0.0, 0
        for store in per_layer:
            g = torch.stack(store).double()
            std = g.std(0, unbiased=False)
            varying = std > 0
            ratio = float((g.abs().mean(0)[varying] / std[varying]).sum())
            if ratio > 0:
                score += math.log(ratio)
                contributing += 1
        return score if contributing else -math.inf

    def __repr__(self) -> str:
        return f"ZicoProxy(parts={self.parts})"
