"""Low-rank factorisation of linear and convolution layers.

- ``svd``: truncated SVD of a linear layer's weight (Denton et al., NeurIPS 2014) into two linear
  layers; 1x1 convolutions, which are linear layers over channels, are split the same way.
- ``tucker``: Tucker-2 of a kxk convolution's kernel over its output and input channel modes (Kim
  et al., "Compression of Deep Convolutional Neural Networks for Fast and Low Power Mobile
  Applications", ICLR 2016): 1x1 (in -> r_in), kxk core (r_in -> r_out), 1x1 (r_out -> out).
- ``cp``: rank-R CP decomposition of the kernel (Lebedev et al., "Speeding-up Convolutional Neural
  Networks Using Fine-tuned CP-Decomposition", ICLR 2015): 1x1 (in -> R), depthwise kx1, depthwise
  1xk, 1x1 (R -> out).

Tucker and CP come from tensorly. Ranks come from an *energy* threshold (the share of squared
singular values kept, per mode for Tucker; the fit 1 - |W - W'|^2 / |W|^2 for CP) or a target
*ratio* of parameters kept per layer. Layers whose factorisation would not save parameters, and
grouped/depthwise convolutions, are left alone. Finetuning afterwards recovers most of the loss.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.io import JsonRecord
from slimforge.registry import Registry

__all__ = ["FINETUNE_LR_SCALE", "LOWRANK_METHODS", "LayerFactorisation", "factorise"]

#: a layer's replacement, its ranks and the fit of the factorised kernel.
Factors = tuple[nn.Sequential, tuple[int, ...], float]


@dataclass(frozen=True)
class LayerFactorisation(JsonRecord):
    """One layer's factorisation: the ranks chosen and the parameters before and after."""

    layer: str
    method: str
    ranks: tuple[int, ...]
    params_before: int
    params_after: int
    fit: float


def _energy_rank(singular: np.ndarray, energy: float) -> int:
    power = np.cumsum(singular.astype(np.float64) ** 2)
    return int(np.searchsorted(power / power[-1], energy - 1e-12) + 1)


def _fit(w: np.ndarray, approx: np.ndarray) -> float:
    return float(1.0 - np.sum((w - approx) ** 2) / max(np.sum(w**2), 1e-30))


def _svd_split(
    weight: np.ndarray, energy: float | None, ratio: float | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """W (out, n) ~ A (out, r) @ B (r, n) with the rank from energy or a parameter ratio."""
    u, s, vt = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
    out, n = weight.shape
    if energy is not None:
        r = _energy_rank(s, energy)
    else:
        r = max(1, int(ratio * out * n / (out + n)))
    r = min(r, len(s))
    root = np.sqrt(s[:r])
    return u[:, :r] * root, root[:, None] * vt[:r], r


def _linear_svd(
    name: str, m: nn.Module, energy: float | None, ratio: float | None, seed: int
) -> Factors | None:
    if isinstance(m, nn.Conv2d):
        if m.kernel_size != (1, 1) or m.groups != 1:
            return None
        w = m.weight.detach().reshape(m.out_channels, m.in_channels).numpy()
    elif isinstance(m, nn.Linear):
        w = m.weight.detach().numpy()
    else:
        return None
    a, b, r = _svd_split(w, energy, ratio)
    out, n = w.shape
    if r * (out + n) >= out * n:
        return None
    fit = _fit(w, a @ b)
    if isinstance(m, nn.Linear):
        first, second = nn.Linear(n, r, bias=False), nn.Linear(r, out, bias=m.bias is not None)
        first.weight.data = torch.from_numpy(b).float()
        second.weight.data = torch.from_numpy(a).float()
    else:
        first = nn.Conv2d(n, r, 1, m.stride, 0, bias=False)
        second = nn.Conv2d(r, out, 1, bias=m.bias is not None)
        first.weight.data = torch.from_numpy(b).float().view(r, n, 1, 1)
        second.weight.data = torch.from_numpy(a).float().view(out, r, 1, 1)
    if m.bias is not None:
        second.bias.data = m.bias.detach().clone()
    return nn.Sequential(first, second), (r,), fit


def _tl() -> tuple[Any, Any]:
    try:
        import tensorly
        from tensorly import decomposition
    except ImportError:
        raise MissingDependencyError(
            "Tucker and CP factorisation need tensorly; pip install tensorly"
        ) from None
    tensorly.set_backend("numpy")
    return tensorly, decomposition


def _spatial_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == 1 and m.kernel_size != (1, 1)


def _tucker2(name: str, m: nn.Module, energy: float | None, ratio: float | None, seed: int) -> Factors | None:
    if not _spatial_conv(m):
        return None
    tl, decomposition = _tl()
    w = m.weight.detach().numpy().astype(np.float64)
    out, inp, kh, kw = w.shape
    if energy is not None:
        r_out = _energy_rank(np.linalg.svd(tl.unfold(w, 0), compute_uv=False), energy)
        r_in = _energy_rank(np.linalg.svd(tl.unfold(w, 1), compute_uv=False), energy)
    else:
        # Same share c of both channel counts: c*I*I + c^2*I*O*k^2 + c*O*O = ratio*I*O*k^2.
        a, b, k2 = inp * out * kh * kw, inp * inp + out * out, kh * kw
        c = (-b + math.sqrt(b * b + 4 * a * ratio * inp * out * k2)) / (2 * a)
        r_out, r_in = max(1, int(c * out)), max(1, int(c * inp))
    r_out, r_in = min(r_out, out), min(r_in, inp)
    after = inp * r_in + r_in * r_out * kh * kw + r_out * out
    if after >= w.size:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (core, (u_out, u_in)), _ = decomposition.partial_tucker(
            w, rank=[r_out, r_in], modes=[0, 1], init="svd", n_iter_max=50, random_state=seed
        )
    approx = tl.tenalg.multi_mode_dot(core, [u_out, u_in], modes=[0, 1])
    first = nn.Conv2d(inp, r_in, 1, bias=False)
    middle = nn.Conv2d(r_in, r_out, (kh, kw), m.stride, m.padding, m.dilation, bias=False)
    last = nn.Conv2d(r_out, out, 1, bias=m.bias is not None)
    first.weight.data = torch.from_numpy(np.ascontiguousarray(u_in.T)).float().view(r_in, inp, 1, 1)
    middle.weight.data = torch.from_numpy(np.ascontiguousarray(core)).float()
    last.weight.data = torch.from_numpy(np.ascontiguousarray(u_out)).float().view(out, r_out, 1, 1)
    if m.bias is not None:
        last.bias.data = m.bias.detach().clone()
    return nn.Sequential(first, middle, last), (r_out, r_in), _fit(w, approx)


def _cp_layers(m: nn.Conv2d, rank: int, seed: int, iterations: int = 200) -> tuple[nn.Sequential, float]:
    tl, decomposition = _tl()
    w = m.weight.detach().numpy().astype(np.float64)
    out, inp, kh, kw = w.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cp = decomposition.parafac(
            w, rank=rank, init="random", n_iter_max=iterations, random_state=seed, normalize_factors=True
        )
    weights, (a, b, c, d) = cp.weights, cp.factors
    approx = tl.cp_to_tensor(cp)
    (sh, sw), (ph, pw), (dh, dw) = m.stride, m.padding, m.dilation
    first = nn.Conv2d(inp, rank, 1, bias=False)
    vertical = nn.Conv2d(rank, rank, (kh, 1), (sh, 1), (ph, 0), (dh, 1), groups=rank, bias=False)
    horizontal = nn.Conv2d(rank, rank, (1, kw), (1, sw), (0, pw), (1, dw), groups=rank, bias=False)
    last = nn.Conv2d(rank, out, 1, bias=m.bias is not None)
    first.weight.data = torch.from_numpy(np.ascontiguousarray(b.T)).float().view(rank, inp, 1, 1)
    vertical.weight.data = torch.from_numpy(np.ascontiguousarray(c.T)).float().view(rank, 1, kh, 1)
    horizontal.weight.data = torch.from_numpy(np.ascontiguousarray(d.T)).float().view(rank, 1, 1, kw)
    last.weight.data = (
        torch.from_numpy(np.ascontiguousarray(a * weights[None, :])).float().view(out, rank, 1, 1)
    )
    if m.bias is not None:
        last.bias.data = m.bias.detach().clone()
    return nn.Sequential(first, vertical, horizontal, last), _fit(w, approx)


def _cp(name: str, m: nn.Module, energy: float | None, ratio: float | None, seed: int) -> Factors | None:
    if not _spatial_conv(m):
        return None
    out, inp, kh, kw = m.weight.shape
    per_rank = out + inp + kh + kw
    max_rank = int(m.weight.numel() / per_rank)
    if max_rank < 1:
        return None
    if energy is None:
        rank = max(1, min(max_rank, int(ratio * m.weight.numel() / per_rank)))
        layers, fit = _cp_layers(m, rank, seed)
        return layers, (rank,), fit
    # CP has no singular values: find the smallest rank whose fit reaches the energy by doubling,
    # then bisection, with short runs (the fit of a longer run is only higher), then fit it fully.
    rank = 1
    while rank < max_rank and _cp_layers(m, rank, seed, iterations=25)[1] < energy:
        rank *= 2
    lo, hi = rank // 2 + 1, min(rank, max_rank)
    while lo < hi:
        mid = (lo + hi) // 2
        if _cp_layers(m, mid, seed, iterations=25)[1] >= energy:
            hi = mid
        else:
            lo = mid + 1
    layers, fit = _cp_layers(m, hi, seed)
    return layers, (hi,), fit


#: method -> function(name, module, energy, ratio, seed) -> (replacement, ranks, fit) or None.
LOWRANK_METHODS: Registry[Callable] = Registry("low-rank method")
LOWRANK_METHODS.register("svd", _linear_svd)
LOWRANK_METHODS.register("tucker", _tucker2)
LOWRANK_METHODS.register("cp", _cp)

#: method -> factor on the finetuning learning rate after factorising (1 when absent). CP layers
#: are unstable to finetune at the usual rate (Lebedev et al. 2015): ResNet-20 on the CIFAR subset
#: fell from 69 % to 41 % after 8 epochs at 0.01 and kept 68 % at 0.002 (validation split alike).
FINETUNE_LR_SCALE: dict[str, float] = {"cp": 0.2}


def factorise(
    model: nn.Module,
    method: str,
    *,
    energy: float | None = None,
    ratio: float | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
) -> list[LayerFactorisation]:
    """Replace the layers ``method`` applies to by their low-rank factors, in place.

    Args:
        model: the network.
        method: ``svd`` (linear and 1x1 conv layers), ``tucker`` or ``cp`` (kxk convolutions).
        energy: keep this share of the energy (0 < energy <= 1), or
        ratio: keep this share of each layer's parameters (0 < ratio < 1); give exactly one.
        exclude: module paths left alone.
        seed: seeds tensorly's iterations.

    Returns:
        One entry per layer factorised.
    """
    fn = LOWRANK_METHODS.get(method)
    if (energy is None) == (ratio is None):
        raise InvalidInputError(
            "give exactly one of energy (e.g. 0.9) or ratio (e.g. 0.5) to choose the ranks"
        )
    if energy is not None and not 0 < energy <= 1:
        raise InvalidInputError(f"energy {energy!r} must be in (0, 1], e.g. 0.9")
    if ratio is not None and not 0 < ratio < 1:
        raise InvalidInputError(f"parameter ratio {ratio!r} must be strictly between 0 and 1, e.g. 0.5")
    done = []
    targets = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in set(exclude)
    ]
    for name, module in targets:
        result = fn(name, module, energy, ratio, seed)
        if result is None:
            continue
        replacement, ranks, fit = result
        before = sum(p.numel() for p in module.parameters())
        after = sum(p.numel() for p in replacement.parameters())
        if after >= before:
            continue
        model.set_submodule(name, replacement)
        done.append(LayerFactorisation(name, method, tuple(ranks), before, after, fit))
    return done
