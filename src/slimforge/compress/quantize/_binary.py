"""Binary and ternary weights as training modes, with a straight-through estimator.

- ``binary``: BinaryConnect (Courbariaux, Bengio and David, NeurIPS 2015) takes ``sign(w)``;
  with ``scale`` (the default) it is BWN (Rastegari et al., "XNOR-Net", ECCV 2016):
  ``alpha * sign(w)`` with ``alpha = mean |w|`` per output channel.
- ``ternary``: TWN (Li, Zhang and Liu, "Ternary Weight Networks", 2016): ``alpha * t`` with
  ``t in {-1, 0, +1}``, threshold ``delta = 0.7 * mean |w|`` and ``alpha`` the mean of the ``|w|``
  above it, per layer.

Training keeps a float *latent* copy of each weight. The forward and backward passes run with the
quantized weights; their gradient updates the latent weights (the straight-through estimator,
Bengio et al., 2013), which are then quantized again. BinaryConnect's latent weights are clipped
to [-1, 1] as in the paper. First and last layers stay float by default, as in all three papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from slimforge.compress.prune import prunable_weights
from slimforge.compress.quantize._latent import LatentWeightHook
from slimforge.errors import InvalidInputError

__all__ = ["LowBitHook", "binarize", "first_and_last", "ternarize"]


def binarize(w: torch.Tensor, *, scale: bool = True) -> torch.Tensor:
    """``sign(w)`` (zeros to +1), times the per-output-channel mean |w| when ``scale``."""
    signs = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    if not scale:
        return signs
    alpha = w.abs().flatten(1).mean(1).view(-1, *([1] * (w.dim() - 1)))
    return signs * alpha


def ternarize(w: torch.Tensor) -> torch.Tensor:
    """TWN's ternary weights ``alpha * {-1, 0, +1}`` with ``delta = 0.7 * mean|w|`` (per layer)."""
    delta = 0.7 * w.abs().mean()
    keep = w.abs() > delta
    alpha = w.abs()[keep].mean() if keep.any() else w.new_tensor(0.0)
    return torch.sign(w) * keep.to(w.dtype) * alpha


def first_and_last(model: nn.Module) -> list[str]:
    """Paths of the first and the last conv/linear layer (registration order)."""
    names = list(prunable_weights(model))
    return list(dict.fromkeys([names[0], names[-1]])) if names else []


class LowBitHook(LatentWeightHook):
    """Train with binary or ternary weights on the layers named, through latent float weights.

    Args:
        mode: ``binary`` or ``ternary``.
        scale: binary only: BWN's per-channel scale (False is plain BinaryConnect).
        exclude: layers left in float (default: first and last, computed at attach).
    """

    def __init__(self, mode: str, *, scale: bool = True, exclude: Sequence[str] | None = None) -> None:
        if mode not in ("binary", "ternary"):
            raise InvalidInputError(f"low-bit mode {mode!r} must be 'binary' or 'ternary'")
        super().__init__()
        self.mode = mode
        self.scale = scale
        self.exclude = None if exclude is None else list(exclude)

    def quantize(self, w: torch.Tensor) -> torch.Tensor:
        """The low-bit version of ``w``."""
        return binarize(w, scale=self.scale) if self.mode == "binary" else ternarize(w)

    def _weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        if self.exclude is None:
            self.exclude = first_and_last(model)
        return {n: w for n, w in prunable_weights(model).items() if n not in set(self.exclude)}

    def attach(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, w in self._weights(model).items():
                latent = self.latent.get(n)
                # Keep the latent weights across finetuning runs while they still match the model.
                if (
                    latent is None
                    or latent.shape != w.shape
                    or not torch.equal(self.quantize(latent), w.detach())
                ):
                    latent = w.detach().clone()
                self.latent[n] = latent
                w.copy_(self.quantize(latent))

    def _quantized(self, name: str, latent: torch.Tensor) -> torch.Tensor:
        return self.quantize(latent)

    def _new_latent(self, w: torch.Tensor) -> torch.Tensor:
        latent = w.detach().clone()
        if self.mode == "binary" and not self.scale:
            latent.clamp_(-1.0, 1.0)
        return latent

    def apply(self, model: nn.Module) -> None:
        """Quantize the model's weights now (without training)."""
        self.attach(model)
