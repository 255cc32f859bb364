"""Unstructured magnitude pruning: zero the smallest weights, layer by layer or globally.

Han, Pool, Tran and Dally ("Learning both Weights and Connections for Efficient Neural
Networks", NeurIPS 2015): remove the weights of smallest magnitude, then retrain the rest with
the pruned ones held at zero (:class:`MaskHook`). The dense tensors stay dense in PyTorch and
ONNX; the saving is in storage, which :func:`slimforge.compress.pack_state` counts in real bytes
(sparse relative indices), and needs sparse kernels to turn into speed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from slimforge.compress.prune._structured import check_ratio
from slimforge.errors import InvalidInputError
from slimforge.training import TrainHook

__all__ = ["MaskHook", "magnitude_masks", "prunable_weights", "sparsity"]


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The conv and linear weights of ``model`` by module path (what magnitude pruning acts on)."""
    return {n: m.weight for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def fitting_weights(
    model: nn.Module, per_layer: Mapping[str, torch.Tensor], what: str, stage: str
) -> dict[str, nn.Parameter]:
    """``model``'s prunable weights, once each tensor of ``per_layer`` still has its layer's shape.

    Args:
        per_layer: what an earlier step computed per layer path (masks, cluster indices).
        what: the tensors in words, ``{name}`` the layer (``the sparsity mask of {name} no longer fits``).
        stage: the recipe stage that needs them, named in the error.

    Raises:
        InvalidInputError: a layer is gone or was reshaped (a later stage changed its shape).
    """
    weights = prunable_weights(model)
    for n, tensor in per_layer.items():
        if n not in weights or weights[n].shape != tensor.shape:
            raise InvalidInputError(
                f"{what.format(name=repr(n))} the model (a later stage changed its shape); "
                f"put structured pruning and low-rank stages before {stage}"
            )
    return weights


def magnitude_masks(
    model: nn.Module, ratio: float, *, scope: str = "layer", exclude: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks that drop ``ratio`` of the weights by magnitude.

    Args:
        model: the network (not changed).
        ratio: share of weights to remove, strictly between 0 and 1.
        scope: ``layer`` removes that share of every layer; ``global`` ranks all weights together
            (layers with many small weights lose more).
        exclude: module paths left dense.

    Weights that are already zero count as removed first, so masks only grow under iteration.
    """
    ratio = check_ratio(ratio)
    if scope not in ("layer", "global"):
        raise InvalidInputError(f"sparsity scope {scope!r} must be 'layer' or 'global'")
    weights = {n: w for n, w in prunable_weights(model).items() if n not in set(exclude)}
    if not weights:
        raise InvalidInputError("the model has no conv or linear weights to prune")
    masks = {}
    if scope == "global":
        scores = torch.cat([w.detach().abs().flatten() for w in weights.values()])
        k = round(ratio * scores.numel())
        threshold = scores.kthvalue(k).values if k > 0 else scores.min() - 1
        for n, w in weights.items():
            masks[n] = w.detach().abs() > threshold
    else:
        for n, w in weights.items():
            scores = w.detach().abs().flatten()
            k = round(ratio * scores.numel())
            if k == 0:
                masks[n] = torch.ones_like(w, dtype=torch.bool)
                continue
            # Ties at the threshold: rank by position so exactly k go (stable, deterministic).
            order = torch.argsort(scores, stable=True)
            keep = torch.ones_like(scores, dtype=torch.bool)
            keep[order[:k]] = False
            masks[n] = keep.view_as(w)
    return masks


class MaskHook(TrainHook):
    """Hold pruned weights at zero while training: zero their gradients and re-zero after each step."""

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        self.masks = dict(masks)

    def attach(self, model: nn.Module) -> None:
        weights = fitting_weights(model, self.masks, "the sparsity mask of {name} no longer fits", "sparsify")
        # masks follow the weights to the training device (a --train-device GPU)
        self.masks = {n: mask.to(weights[n].device) for n, mask in self.masks.items()}
        self._apply(model)

    def after_backward(self, model: nn.Module) -> None:
        weights = prunable_weights(model)
        for n, mask in self.masks.items():
            if weights[n].grad is not None:
                weights[n].grad.mul_(mask)

    def after_step(self, model: nn.Module) -> None:
        self._apply(model)

    def _apply(self, model: nn.Module) -> None:
        weights = prunable_weights(model)
        with torch.no_grad():
            for n, mask in self.masks.items():
                weights[n].mul_(mask)


def sparsity(model: nn.Module) -> float:
    """Share of conv/linear weights that are exactly zero."""
    weights = list(prunable_weights(model).values())
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / max(1, total)
