"""Proxies read from the activations of one forward pass (no labels): NASWOT, Jacobian covariance, MeCo."""

from __future__ import annotations

import math

import torch
from torch import nn

from slimforge.estimators.proxies._base import Proxy, ProxyNotApplicableError, activation_modules

__all__ = ["JacobCovProxy", "MecoProxy", "NaswotProxy"]


def _forward_with_hooks(model: nn.Module, images: torch.Tensor, handles: list) -> None:
    """Run ``model`` on ``images`` without gradients for the hooks behind ``handles``, then remove them."""
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()


class NaswotProxy(Proxy):
    """NASWOT: log-determinant of the binary activation-pattern kernel (Mellor et al., ICML 2021).

    Every ReLU unit gives each image a bit (input > 0); ``K[i, j]`` counts the units on which
    images ``i`` and ``j`` agree. Networks that separate the images into distinct linear regions
    have a well-conditioned ``K`` and a high ``log|K|``; a network that maps every image to the same
    pattern has a singular ``K`` and scores ``-inf``.
    """

    name = "naswot"
    min_batch = 2

    def check(self, model: nn.Module) -> None:
        if not activation_modules(model):
            raise ProxyNotApplicableError(
                f"proxy 'naswot' reads ReLU activation patterns; {type(model).__name__} has no "
                "ReLU/ReLU6/LeakyReLU module"
            )

    def _score(self, model, images, labels, generator) -> float:
        n = len(images)
        kernel = torch.zeros(n, n, dtype=torch.float64)

        def accumulate(module: nn.Module, inputs: tuple) -> None:
            # A pre-hook: in-place ReLUs overwrite their input, so read it before they run.
            codes = (inputs[0].detach().reshape(n, -1) > 0).double()
            kernel.add_(codes @ codes.T).add_((1.0 - codes) @ (1.0 - codes).T)

        hooks = [m.register_forward_pre_hook(accumulate) for m in activation_modules(model)]
        _forward_with_hooks(model, images, hooks)
        sign, logdet = torch.linalg.slogdet(kernel)
        # K is a sum of Gram matrices, so positive semi-definite: a non-positive sign means singular.
        return float(logdet) if float(sign) > 0 else -math.inf


class JacobCovProxy(Proxy):
    """Jacobian covariance (Mellor et al., 2020, v1 of "NAS without training").

    The input-Jacobians of the summed logits, one per image, are correlated across the batch; with
    eigenvalues ``v`` of that correlation matrix the score is ``-Σ log(v+k) + 1/(v+k)``, ``k = 1e-5``:
    highest when the images' Jacobians are uncorrelated. A network whose output does not depend on
    its input (every Jacobian zero) scores ``-inf``; an image whose Jacobian alone is constant makes
    the correlation undefined, and the score NaN.
    """

    name = "jacob_cov"
    min_batch = 2

    def _score(self, model, images, labels, generator) -> float:
        x = images.clone().requires_grad_(True)
        out = model(x).sum()
        (jac,) = torch.autograd.grad(out, x, allow_unused=True) if out.requires_grad else (None,)
        if jac is None or not jac.any():
            return -math.inf  # the output does not depend on the input at all: the degenerate network
        corr = torch.corrcoef(jac.reshape(len(x), -1).double())
        if not torch.isfinite(corr).all():
            return math.nan
        v = torch.linalg.eigvalsh(corr)
        k = 1e-5
        return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


class MecoProxy(Proxy):
    """MeCo-style: Σ over conv layers of channels × the smallest eigenvalue of the channel correlation.

    After Jiang et al., "Zero-Shot NAS via the Minimum Eigenvalue of Correlation on Feature Maps"
    (NeurIPS 2023): for each conv output the Pearson correlation between its channels is taken over
    the spatial positions of each image; its smallest eigenvalue (how far the channels are from
    linearly dependent) is averaged over the images and weighted by the channel count. A channel
    that is constant over an image counts as fully redundant (that image's eigenvalue is 0), and so
    does a layer with at least as many channels as spatial positions (its correlation is singular).
    No labels and no backward pass: one forward pass of a few images suffices.
    """

    name = "meco"

    def check(self, model: nn.Module) -> None:
        if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
            raise ProxyNotApplicableError(
                f"proxy 'meco' reads conv feature maps; {type(model).__name__} has no Conv2d"
            )

    def _score(self, model, images, labels, generator) -> float:
        total = 0.0

        def accumulate(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            nonlocal total
            feats = output.detach().double().flatten(2)  # (B, C, HW)
            if feats.shape[2] < 2 or feats.shape[1] < 2:
                return
            if feats.shape[1] >= feats.shape[2]:
                # Centred, C channels over HW positions span at most HW - 1 dimensions: the C x C
                # correlation is singular and its smallest eigenvalue is 0. Skipping it adds that 0
                # exactly, where eigvalsh would spend most of the proxy's time (1280 x 1280 at 2x2)
                # to return rounding noise.
                return
            centred = feats - feats.mean(2, keepdim=True)
            norm = centred.norm(dim=2, keepdim=True)
            # A constant channel has no defined correlation; as a zero row it makes the matrix
            # singular, i.e. it counts as fully redundant (smallest eigenvalue 0).
            z = torch.where(norm > 1e-12, centred / norm.clamp_min(1e-12), torch.zeros_like(centred))
            corr = z @ z.transpose(1, 2)
            total += output.shape[1] * float(torch.linalg.eigvalsh(corr)[:, 0].clamp_min(0.0).mean())

        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        _forward_with_hooks(model, images, [m.register_forward_hook(accumulate) for m in convs])
        return total
