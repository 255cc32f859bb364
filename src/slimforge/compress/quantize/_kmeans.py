"""Weight sharing with k-means codebooks ("trained quantization", Han, Mao and Dally, ICLR 2016).

Each layer's non-zero weights are clustered into ``2**bits`` centroids (linear initialisation over
[min, max], which the paper found best because it keeps the rare large weights), and every weight
is replaced by its centroid. Finetuning then trains the centroids: :class:`SharedWeightHook` turns
each weight's gradient into its cluster's mean gradient and snaps the weights back to their
cluster's mean after each step, so the layer keeps exactly ``2**bits`` distinct values (plus the
pruned zeros). The paper sums the gradients of a cluster; the mean used here is the same
direction with a step that does not grow with the cluster's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from slimforge.compress.prune import fitting_weights, prunable_weights
from slimforge.errors import InvalidInputError
from slimforge.training import TrainHook

__all__ = ["SharedWeightHook", "kmeans_1d", "share_weights"]


def kmeans_1d(values: np.ndarray, k: int, *, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars with linear initialisation; returns (centroids, assignment)."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    k = min(k, len(np.unique(values)))
    centroids = np.linspace(values.min(), values.max(), k)
    assign = np.zeros(len(values), np.int64)
    for _ in range(iterations):
        # Sorted centroids: the nearest one is found from the midpoints, in O(n log k).
        centroids = np.sort(centroids)
        mids = (centroids[1:] + centroids[:-1]) / 2
        new = np.searchsorted(mids, values)
        sums = np.bincount(new, weights=values, minlength=k)
        counts = np.bincount(new, minlength=k)
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.array_equal(new, assign) and np.allclose(updated, centroids):
            break
        assign, centroids = new, updated
    return centroids, assign


def kmeans_codebook(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` with its non-zero weights snapped to ``2**bits`` k-means centroids, and their cluster indices.

    Zeros stay zero and get the index -1.
    """
    flat = w.detach().flatten()
    nonzero = flat != 0
    centroids, assign = kmeans_1d(flat[nonzero].numpy(), 2**bits)
    index = torch.full_like(flat, -1, dtype=torch.long)
    index[nonzero] = torch.from_numpy(assign)
    new = torch.zeros_like(flat)
    new[nonzero] = torch.from_numpy(centroids[assign]).to(flat.dtype)
    return new.view_as(w), index.view_as(w)


def share_layer_weights(
    weights: Mapping[str, torch.Tensor], bits: Mapping[str, int]
) -> dict[str, torch.Tensor]:
    """Replace each named weight by its ``bits[name]``-bit k-means codebook values, in place.

    Returns:
        Per layer, the cluster index of every weight (-1 for zeros, which stay zero).
    """
    groups: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, b in bits.items():
            new, groups[name] = kmeans_codebook(weights[name], b)
            weights[name].copy_(new)
    return groups


def share_weights(model: nn.Module, bits: int, *, exclude: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Replace each conv/linear layer's non-zero weights by ``2**bits`` k-means centroids, in place.

    Returns:
        Per layer, the cluster index of every weight (-1 for zeros, which stay zero).
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise InvalidInputError(f"weight-sharing bits {bits!r} must be an integer from 1 to 8 (2-8 usual)")
    weights = prunable_weights(model)
    return share_layer_weights(weights, {name: bits for name in weights if name not in set(exclude)})


class SharedWeightHook(TrainHook):
    """Finetune shared weights: per-cluster mean gradients, weights snapped to cluster means."""

    def __init__(self, groups: dict[str, torch.Tensor]) -> None:
        self.groups = groups

    def attach(self, model: nn.Module) -> None:
        fitting_weights(
            model, self.groups, "the weight-sharing groups of {name} no longer fit", "quantize:kmeans"
        )

    def _pool(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        flat, idx = tensor.flatten(), index.flatten().to(tensor.device)
        keep = idx >= 0
        k = int(idx.max()) + 1 if keep.any() else 0
        sums = torch.zeros(k, dtype=flat.dtype, device=flat.device).index_add_(0, idx[keep], flat[keep])
        counts = torch.bincount(idx[keep], minlength=k).clamp_min(1).to(flat.dtype)
        pooled = torch.zeros_like(flat)
        pooled[keep] = (sums / counts)[idx[keep]]
        return pooled.view_as(tensor)

    def after_backward(self, model: nn.Module) -> None:
        weights = prunable_weights(model)
        for n, index in self.groups.items():
            if weights[n].grad is not None:
                weights[n].grad.copy_(self._pool(weights[n].grad, index))

    def after_step(self, model: nn.Module) -> None:
        weights = prunable_weights(model)
        with torch.no_grad():
            for n, index in self.groups.items():
                weights[n].copy_(self._pool(weights[n].detach(), index))
