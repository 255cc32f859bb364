"""Pruning-at-initialisation saliencies summed over a network, as zero-cost proxies.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021) turned these per-weight
saliencies into architecture scores by summing them over every conv and linear weight:
SNIP, GraSP, Fisher, gradient norm and SynFlow. Each needs one backward pass (GraSP two);
all but SynFlow need class labels for the cross-entropy loss.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from slimforge.estimators.proxies._base import Proxy, ProxyNotApplicableError, norm_modules, weight_modules

__all__ = ["FisherProxy", "GradNormProxy", "GraspProxy", "SnipProxy", "SynflowProxy"]


def _weights(model: nn.Module, proxy: str) -> list[torch.Tensor]:
    weights = [m.weight for _, m in weight_modules(model)]
    if not weights:
        raise ProxyNotApplicableError(f"proxy {proxy!r} scores conv/linear weights; this model has none")
    return weights


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(images), labels)


def _gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, weights: list[torch.Tensor]
) -> tuple:
    """∂L/∂w of the cross-entropy loss for each weight (None for a weight the loss does not reach)."""
    return torch.autograd.grad(_loss(model, images, labels), weights, allow_unused=True)


class _WeightProxy(Proxy):
    """A saliency summed over conv/linear weights: a model without any cannot be scored."""

    def check(self, model: nn.Module) -> None:
        _weights(model, self.name)


class _GradientSaliency(_WeightProxy):
    """Σ over conv/linear weights of a term of ``(w, ∂L/∂w)``; a weight without a gradient adds nothing."""

    needs_labels = True

    @staticmethod
    @abstractmethod
    def _term(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The saliency of one weight tensor."""

    def _score(self, model, images, labels, generator) -> float:
        weights = _weights(model, self.name)
        grads = _gradients(model, images, labels, weights)
        return float(sum(self._term(w.detach(), g) for w, g in zip(weights, grads) if g is not None))


class SnipProxy(_GradientSaliency):
    """SNIP connection sensitivity Σ|w ⊙ ∂L/∂w| (Lee et al., ICLR 2019)."""

    name = "snip"

    @staticmethod
    def _term(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (weight * grad).abs().sum()


class GradNormProxy(_GradientSaliency):
    """Sum over layers of the L2 norm of the loss gradient ∂L/∂w (Abdelfattah et al., ICLR 2021)."""

    name = "grad_norm"

    @staticmethod
    def _term(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad.norm()


class GraspProxy(_WeightProxy):
    """GraSP gradient-signal preservation −Σ w ⊙ (H g) (Wang et al., ICLR 2020).

    ``g`` is the loss gradient and ``H g`` its Hessian-vector product, from a second backward
    pass through the first one's graph.
    """

    name = "grasp"
    needs_labels = True

    def _score(self, model, images, labels, generator) -> float:
        weights = _weights(model, self.name)
        g = _gradients(model, images, labels, weights)
        g = [torch.zeros_like(w) if gi is None else gi.detach() for w, gi in zip(weights, g)]
        grads = torch.autograd.grad(
            _loss(model, images, labels), weights, create_graph=True, allow_unused=True
        )
        z = sum((gi * vi).sum() for gi, vi in zip(grads, g) if gi is not None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            return 0.0  # the loss does not depend on any weight: no curvature at all
        try:
            hg = torch.autograd.grad(z, weights, allow_unused=True)
        except RuntimeError as exc:
            if "not implemented" not in str(exc):
                raise
            raise ProxyNotApplicableError(
                f"proxy 'grasp' needs second derivatives, and {type(model).__name__} uses an operation "
                f"PyTorch cannot differentiate twice ({str(exc).splitlines()[0]})"
            ) from None
        return float(sum(-(w.detach() * h).sum() for w, h in zip(weights, hg) if h is not None))


class FisherProxy(_WeightProxy):
    """Fisher channel saliency Σ_c ½·mean_n(Σ_xy a·∂L/∂a)² over conv/linear outputs (Theis et al., 2018).

    ``a`` is a layer's output feature map; the inner sum runs over spatial positions, giving one
    saliency per channel (what channel pruning would remove).
    """

    name = "fisher"
    needs_labels = True

    def _score(self, model, images, labels, generator) -> float:
        acts: list[torch.Tensor] = []

        def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(output, torch.Tensor) and output.requires_grad:
                acts.append(output)

        handles = [m.register_forward_hook(keep) for _, m in weight_modules(model)]
        try:
            loss = _loss(model, images, labels)
        finally:
            for h in handles:
                h.remove()
        grads = torch.autograd.grad(loss, acts, allow_unused=True)
        total = 0.0
        for a, g in zip(acts, grads):
            if g is None:
                continue
            per_channel = (a.detach() * g).flatten(2).sum(2) if a.ndim > 2 else a.detach() * g
            total += float((0.5 * per_channel.pow(2).mean(0)).sum())
        return total


class SynflowProxy(_WeightProxy):
    """SynFlow Σ w ⊙ ∂R/∂w with R = 1ᵀ f_|θ|(1) (Tanaka et al., NeurIPS 2020).

    Data-free: the input is one all-ones image, every parameter is replaced by its absolute value,
    batch norm is removed (as in Abdelfattah et al.) and the pass runs in float64 so that deep
    networks do not overflow. A network whose output does not reach the input scores 0.
    """

    name = "synflow"

    def _score(self, model, images, labels, generator) -> float:
        _drop_batchnorm(model)
        model.double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        weights = _weights(model, self.name)
        ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64)
        grads = torch.autograd.grad(model(ones).sum(), weights, allow_unused=True)
        return float(sum((w.detach() * g).sum() for w, g in zip(weights, grads) if g is not None))


def _drop_batchnorm(model: nn.Module) -> None:
    """Replace every batch-norm layer of ``model`` (a private copy) with an identity."""
    targets = {id(m) for m in norm_modules(model)}
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if id(child) in targets:
                setattr(parent, child_name, nn.Identity())
