"""k-bit weight quantizers (1 to 8 bits per layer): rounding, packed size, quantization-aware training.

A mixed-precision policy gives each conv / linear layer its own weight bit-width (HAQ, Wang et al.,
CVPR 2019). :data:`BIT_QUANTIZERS` holds the two ways a layer's weights are rounded: symmetric
per-output-channel linear (a float32 scale per channel) and a per-layer k-means codebook (Deep
Compression, Han et al., 2016). :func:`mixed_precision_bytes` counts what such a model stores:
each quantized layer's weights packed at its bit-width plus its dequantization data, every other
parameter (biases, BN, layers kept in float) float32; buffers (BN running statistics) are not
counted, since deployment folds BN into the conv before it. :class:`MixedBitHook` finetunes at
those bit-widths with a straight-through estimator; :func:`bit_sensitivity` ranks the layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from slimforge.compress.prune import SkippedLayer
from slimforge.compress.quantize._latent import LatentWeightHook
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.nn import evaluating
from slimforge.registry import Registry
from slimforge.training import TrainHook

__all__ = [
    "BIT_QUANTIZERS",
    "BitSensitivity",
    "MixedBitHook",
    "WeightQuantizer",
    "average_bits",
    "bit_sensitivity",
    "kmeans_quantize",
    "linear_quantize",
    "mixed_precision_bytes",
    "quantizable_layers",
    "quantize_weights",
]


def linear_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel rounding to ``2**(bits-1) - 1`` levels each side of 0 (fake-quantized)."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().flatten(1).amax(1).clamp_min(1e-12) / max(qmax, 1)
    shape = (-1,) + (1,) * (w.dim() - 1)
    return torch.round(w / scale.view(shape)).clamp(-qmax, qmax) * scale.view(shape)


def kmeans_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The layer's non-zero weights replaced by the nearest of ``2**bits`` k-means centroids (zeros kept)."""
    from slimforge.compress.quantize._kmeans import kmeans_codebook

    return kmeans_codebook(w, bits)[0]


class MixedBitHook(LatentWeightHook):
    """Quantization-aware finetuning at per-layer bit-widths (straight-through estimator).

    The forward and backward passes run with quantized weights; the gradient updates float *latent*
    weights, which are quantized again after each step (as :class:`LowBitHook` does for binary and
    ternary weights). After training the model holds the quantized weights.
    """

    def __init__(
        self, bits: Mapping[str, int], quantize: Callable[[torch.Tensor, int], torch.Tensor]
    ) -> None:
        super().__init__()
        self.bits = dict(bits)
        self.quantize = quantize

    def _weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        return {n: model.get_submodule(n).weight for n in self.bits}

    def _quantized(self, name: str, latent: torch.Tensor) -> torch.Tensor:
        return self.quantize(latent, self.bits[name])

    def attach(self, model: nn.Module) -> None:
        self.after_step(model)  # the model's weights are the first latent weights


def _linear_hook(model: nn.Module, bits: Mapping[str, int]) -> TrainHook:
    return MixedBitHook(bits, linear_quantize)


def _kmeans_hook(model: nn.Module, bits: Mapping[str, int]) -> TrainHook:
    # Re-clustering every step would cost seconds; Deep Compression finetunes the centroids of fixed
    # clusters instead (the shared-weight hook), which is what this does at each layer's bit-width.
    from slimforge.compress.quantize._kmeans import SharedWeightHook, share_layer_weights

    weights = {name: model.get_submodule(name).weight for name in bits}
    return SharedWeightHook(share_layer_weights(weights, bits))


@dataclass(frozen=True)
class WeightQuantizer:
    """A k-bit weight quantizer: the rounding, the bytes it stores besides the packed weights, QAT."""

    quantize: Callable[[torch.Tensor, int], torch.Tensor]
    overhead_bytes: Callable[[torch.Size, int], int]
    qat_hook: Callable[[nn.Module, Mapping[str, int]], TrainHook]
    description: str


#: quantizer name -> :class:`WeightQuantizer`.
BIT_QUANTIZERS: Registry[WeightQuantizer] = Registry("weight quantizer")
BIT_QUANTIZERS.register(
    "linear",
    WeightQuantizer(
        linear_quantize,
        lambda shape, bits: 4 * int(shape[0]),
        _linear_hook,
        "symmetric per-output-channel linear (a float32 scale per channel)",
    ),
)
BIT_QUANTIZERS.register(
    "kmeans",
    WeightQuantizer(
        kmeans_quantize,
        lambda shape, bits: 4 * 2**bits,
        _kmeans_hook,
        "per-layer k-means codebook, linear initialisation (Han et al., 2016; a float32 codebook of 2**bits)",
    ),
)


def quantizable_layers(model: nn.Module, exclude: Sequence[str] = ()) -> tuple[list[str], list[SkippedLayer]]:
    """Conv2d / Linear layers the k-bit search quantizes, and the weighted layers it keeps in float.

    Normalisation layers are not listed as skipped: they fold into the conv before them.
    """
    modules = dict(model.named_modules())
    for path in exclude:
        if path not in modules:
            raise InvalidInputError(f"cannot keep {path!r} in float: the model has no such layer")
    layers, skipped = [], []
    norms = (
        nn.modules.batchnorm._BatchNorm,
        nn.LayerNorm,
        nn.GroupNorm,
        nn.modules.instancenorm._InstanceNorm,
    )
    for name, m in model.named_modules():
        weight = getattr(m, "weight", None)
        if not isinstance(weight, nn.Parameter) or isinstance(m, norms):
            continue
        if name in set(exclude):
            skipped.append(SkippedLayer(name, "kept in float as asked"))
        elif type(m) in (nn.Conv2d, nn.Linear):
            layers.append(name)
        else:
            why = f"kept in float: {type(m).__name__} (the k-bit quantizer handles Conv2d and Linear)"
            skipped.append(SkippedLayer(name, why))
    if not layers:
        raise InvalidInputError(
            f"{type(model).__name__} has no Conv2d or Linear layer to quantize"
            + (f" ({'; '.join(f'{s.layer}: {s.reason}' for s in skipped)})" if skipped else "")
        )
    return layers, skipped


def _check_bits(bits: Mapping[str, int], model: nn.Module) -> None:
    modules = dict(model.named_modules())
    for name, b in bits.items():
        if name not in modules or type(modules[name]) not in (nn.Conv2d, nn.Linear):
            raise InvalidInputError(f"bit policy names {name!r}: the model has no Conv2d/Linear layer there")
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= 8:
            raise InvalidInputError(f"bit-width {b!r} of {name!r} must be an integer from 1 to 8")


def quantize_weights(model: nn.Module, bits: Mapping[str, int], *, quantizer: str = "linear") -> None:
    """Round each named layer's weights to its bit-width, in place (other layers stay float)."""
    q = BIT_QUANTIZERS.get(quantizer)
    _check_bits(bits, model)
    with torch.no_grad():
        for name, b in bits.items():
            w = model.get_submodule(name).weight
            w.copy_(q.quantize(w.detach(), int(b)))


def mixed_precision_bytes(model: nn.Module, bits: Mapping[str, int], *, quantizer: str = "linear") -> int:
    """Bytes to store ``model`` with each named layer's weights at its bit-width (see the module doc)."""
    q = BIT_QUANTIZERS.get(quantizer)
    _check_bits(bits, model)
    quantized = {id(model.get_submodule(n).weight): (n, int(b)) for n, b in bits.items()}
    total = 0
    for p in model.parameters():
        if id(p) in quantized:
            _, b = quantized[id(p)]
            total += math.ceil(p.numel() * b / 8) + q.overhead_bytes(p.shape, b)
        else:
            total += 4 * p.numel()
    return total


def average_bits(model: nn.Module, bits: Mapping[str, int]) -> float:
    """Mean weight bit-width of the named layers, weighted by their number of weights."""
    counts = {n: model.get_submodule(n).weight.numel() for n in bits}
    return sum(counts[n] * b for n, b in bits.items()) / max(1, sum(counts.values()))


# ---- sensitivity ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BitSensitivity(JsonRecord):
    """What rounding one layer alone to ``bits`` does to the model (the rest float, no re-calibration)."""

    layer: str
    num_params: int
    bits: int
    accuracy_drop_pct: float
    output_kl: float


@torch.no_grad()
def bit_sensitivity(
    model: nn.Module,
    layers: Sequence[str],
    bits: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    quantizer: str = "linear",
) -> list[BitSensitivity]:
    """Each layer alone at ``bits``: the accuracy drop and output KL on ``images``, most sensitive first.

    ``model`` is left as it was.
    """
    q = BIT_QUANTIZERS.get(quantizer)
    with evaluating(model):
        reference = torch.log_softmax(model(images), 1)
        base = float((reference.argmax(1) == labels).float().mean()) * 100
        rows = []
        for name in layers:
            w = model.get_submodule(name).weight
            original = w.detach().clone()
            w.copy_(q.quantize(original, bits))
            try:
                out = torch.log_softmax(model(images), 1)
            finally:
                w.copy_(original)
            acc = float((out.argmax(1) == labels).float().mean()) * 100
            kl = float(nn.functional.kl_div(out, reference, log_target=True, reduction="batchmean"))
            rows.append(BitSensitivity(name, original.numel(), bits, base - acc, max(kl, 0.0)))
    return sorted(rows, key=lambda r: -r.output_kl)
