"""Mixed-precision search (HAQ-style): one weight bit-width per layer under a size budget.

HAQ (Wang et al., "HAQ: Hardware-Aware Automated Quantization with Mixed Precision", CVPR 2019)
gives each layer its own bit-width and beats uniform quantization at the same size. Here the policy
is a genome of :class:`BitPolicySpace` (a bit-width from {2, 3, 4, 5, 6, 8} per conv / linear
layer) searched with slimforge's engine; the objectives are the estimated error and the model's
bytes, the budget a hard constraint. Candidates are scored by post-training quantization: each
layer's weights rounded to its bit-width (:data:`BIT_QUANTIZERS`: symmetric per-output-channel
linear, or a per-layer k-means codebook as in Deep Compression), batch-norm re-calibrated, top-1 on
the validation split (:func:`estimate_accuracy`). Quantized weights are cached per (layer, bits),
so a candidate costs only the estimate's forward passes.

A per-layer sensitivity analysis (each layer alone at the lowest bit-width, the rest float) ranks
the layers; the space's guided samples give the sensitive layers more bits, which seeds the initial
population. The best feasible policy and the uniform baselines (4-bit, 8-bit, and the largest
uniform bit-width within the budget, "at equal size") are then finetuned with the same
quantization-aware epochs (straight-through estimator) and measured.

Size accounting (:func:`mixed_precision_bytes`): each quantized layer stores its weights packed at
its bit-width plus its dequantization data (a float32 scale per output channel for ``linear``, a
float32 codebook of ``2**bits`` entries for ``kmeans``); every other parameter (biases, BN, layers
kept in float) is float32. Buffers (BN running statistics) are not counted: deployment folds BN
into the conv before it.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.compress._auto_common import (
    AutoRow,
    EstimateConfig,
    EstimateData,
    PolicyPoint,
    check_search_args,
    closest,
    estimate_accuracy,
    front_points,
    has_batchnorm,
    load_source,
    load_splits,
    finetune_model,
    run_policy_search,
    search_message,
    write_result,
)
from slimforge.compress._budget import Budget
from slimforge.compress._policy_space import BitPolicySpace
from slimforge.compress._structured import SkippedLayer
from slimforge.compress._train import TrainHook
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.hardware._json import JsonRecord
from slimforge.registry import Registry
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = [
    "BITS_BUDGET_KEYS",
    "BIT_QUANTIZERS",
    "AutoBitsResult",
    "BitPolicyEvaluator",
    "BitSensitivity",
    "MixedBitHook",
    "WeightQuantizer",
    "auto_bits",
    "bit_sensitivity",
    "linear_quantize",
    "mixed_precision_bytes",
    "quantizable_layers",
    "quantize_weights",
]

#: the budget keys the mixed-precision search takes.
BITS_BUDGET_KEYS = ("bytes", "size", "bits")


def linear_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel rounding to ``2**(bits-1) - 1`` levels each side of 0 (fake-quantized)."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().flatten(1).amax(1).clamp_min(1e-12) / max(qmax, 1)
    shape = (-1,) + (1,) * (w.dim() - 1)
    return torch.round(w / scale.view(shape)).clamp(-qmax, qmax) * scale.view(shape)


def kmeans_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The layer's non-zero weights replaced by the nearest of ``2**bits`` k-means centroids (zeros kept)."""
    from slimforge.compress._kmeans import kmeans_1d

    flat = w.detach().flatten()
    nonzero = flat != 0
    centroids, assign = kmeans_1d(flat[nonzero].numpy(), 2**bits)
    out = torch.zeros_like(flat)
    out[nonzero] = torch.from_numpy(centroids[assign]).to(flat.dtype)
    return out.view_as(w)


class MixedBitHook(TrainHook):
    """Quantization-aware finetuning at per-layer bit-widths (straight-through estimator).

    The forward and backward passes run with quantized weights; the gradient updates float *latent*
    weights, which are quantized again after each step (as :class:`LowBitHook` does for binary and
    ternary weights). After training the model holds the quantized weights.
    """

    def __init__(
        self, bits: Mapping[str, int], quantize: Callable[[torch.Tensor, int], torch.Tensor]
    ) -> None:
        self.bits = dict(bits)
        self.quantize = quantize
        self.latent: dict[str, torch.Tensor] = {}

    def _weights(self, model: nn.Module) -> dict[str, nn.Parameter]:
        return {n: model.get_submodule(n).weight for n in self.bits}

    def attach(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, w in self._weights(model).items():
                self.latent[n] = w.detach().clone()
                w.copy_(self.quantize(self.latent[n], self.bits[n]))

    def after_backward(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, w in self._weights(model).items():
                w.copy_(self.latent[n])

    def after_step(self, model: nn.Module) -> None:
        with torch.no_grad():
            for n, w in self._weights(model).items():
                self.latent[n] = w.detach().clone()
                w.copy_(self.quantize(self.latent[n], self.bits[n]))


def _linear_hook(model: nn.Module, bits: Mapping[str, int]) -> TrainHook:
    return MixedBitHook(bits, linear_quantize)


def _kmeans_hook(model: nn.Module, bits: Mapping[str, int]) -> TrainHook:
    # Re-clustering every step would cost seconds; Deep Compression finetunes the centroids of fixed
    # clusters instead (the shared-weight hook), which is what this does at each layer's bit-width.
    from slimforge.compress._kmeans import SharedWeightHook, kmeans_1d

    groups = {}
    with torch.no_grad():
        for name, b in bits.items():
            w = model.get_submodule(name).weight
            flat = w.detach().flatten()
            nonzero = flat != 0
            centroids, assign = kmeans_1d(flat[nonzero].numpy(), 2**b)
            index = torch.full_like(flat, -1, dtype=torch.long)
            index[nonzero] = torch.from_numpy(assign)
            new = torch.zeros_like(flat)
            new[nonzero] = torch.from_numpy(centroids[assign]).to(flat.dtype)
            w.copy_(new.view_as(w))
            groups[name] = index.view_as(w)
    return SharedWeightHook(groups)


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


def _avg_bits(model: nn.Module, bits: Mapping[str, int]) -> float:
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
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
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
    finally:
        for m, t in flags:
            m.training = t
    return sorted(rows, key=lambda r: -r.output_kl)


def _guide(layers: Sequence[str], ranking: Sequence[BitSensitivity]) -> tuple[float, ...]:
    """+1 for the most sensitive layer down to -1 for the least, linearly in rank."""
    if len(layers) == 1:
        return (0.0,)
    rank = {r.layer: i for i, r in enumerate(ranking)}
    return tuple(1.0 - 2.0 * rank[n] / (len(layers) - 1) for n in layers)


# ---- the evaluator ----------------------------------------------------------------------------------


class BitPolicyEvaluator(Evaluator):
    """Error (PTQ estimate), bytes and average bits of a bit policy; runs in-process (holds a model).

    Quantized weights are computed once per (layer, bits) and cached.
    """

    def __init__(self, space: BitPolicySpace, data: EstimateData, config: EstimateConfig) -> None:
        super().__init__(space, ("error", "accuracy", "bytes", "avg_bits", "size_ratio"))
        self.data = data
        self.config = config
        self.work = copy.deepcopy(space.model).eval()
        self._cache: dict[tuple[str, int], torch.Tensor] = {}
        self.float_bytes = 4 * sum(p.numel() for p in space.model.parameters())

    def _weights(self, layer: str, bits: int) -> torch.Tensor:
        key = (layer, bits)
        if key not in self._cache:
            space: BitPolicySpace = self.space  # type: ignore[assignment]
            w = space.model.get_submodule(layer).weight.detach()
            self._cache[key] = BIT_QUANTIZERS.get(space.quantizer).quantize(w, bits)
        return self._cache[key]

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        space: BitPolicySpace = self.space  # type: ignore[assignment]
        bits = space.bits(genome)
        model = self.work if not self.config.finetune_steps else copy.deepcopy(self.work)
        with torch.no_grad():
            for name, b in bits.items():
                model.get_submodule(name).weight.copy_(self._weights(name, b))
        acc = estimate_accuracy(model, self.data, self.config)
        size = mixed_precision_bytes(space.model, bits, quantizer=space.quantizer)
        return {
            "error": 100.0 - acc,
            "accuracy": acc,
            "bytes": float(size),
            "avg_bits": _avg_bits(space.model, bits),
            "size_ratio": size / self.float_bytes,
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "estimate": self.config.to_dict()}


# ---- the search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoBitsResult(JsonRecord):
    """What :func:`auto_bits` found: the bit policy, the searched front, and the uniform baselines.

    ``policy`` maps each quantized layer to its bit-width (``layers`` gives the gene order; the
    front's policies are comma-separated bit-widths in that order). ``uniform_bytes`` is the size
    of the model at every uniform bit-width of the choices. ``rows`` are the original (float), the
    searched policy and the uniform baselines, each finetuned with the same quantization-aware
    epochs and then batch-norm re-calibrated.
    """

    model: str
    data: str
    budget: str
    budget_bound_bytes: float
    budget_met: bool
    message: str
    float_bytes: int
    quantizer: str
    bit_choices: tuple[int, ...]
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    layers: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    sensitivity: tuple[BitSensitivity, ...]
    policy: dict[str, int]
    uniform_bytes: dict[str, int]
    equal_size_bits: int | None
    front: tuple[PolicyPoint, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int


def auto_bits(
    model: str | nn.Module,
    data: str | DatasetSplits,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    search_budget: int = 40,
    algorithm: str = "nsga2",
    algorithm_settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    split_seed: int = 0,
    bit_choices: Sequence[int] = (2, 3, 4, 5, 6, 8),
    quantizer: str = "linear",
    keep_float: Sequence[str] = (),
    estimate: EstimateConfig | None = None,
    sensitivity_images: int = 256,
    compare_bits: Sequence[int] = (4, 8),
    finetune_epochs: int = 5,
    finetune_lr: float = 0.01,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = False,
) -> AutoBitsResult:
    """Search per-layer weight bit-widths under a size ``budget``; finetune and compare with uniform.

    Args:
        model: a zoo name, a saved model directory, or an ``nn.Module`` (with ``model_config``);
            never changed.
        data: a data spec or loaded splits (validation scores candidates; test is reported at the end).
        budget: ``bits=B`` (the size of uniform B-bit), ``size=F`` (fraction of the float32 bytes)
            or ``bytes=N``.
        out_dir: gets ``auto_bits.json``, ``auto_bits.txt``, ``searches.json`` and the finetuned
            mixed-precision model ``searched/`` (float storage of the quantized weights); None writes nothing.
        search_budget: distinct policies evaluated.
        algorithm, algorithm_settings: the engine's algorithm and setting overrides.
        seed: seeds the search, the estimate's image draws and the finetuning.
        split_seed: seeds the validation split.
        bit_choices: bit-widths a layer may take.
        quantizer: ``linear`` or ``kmeans`` (:data:`BIT_QUANTIZERS`).
        keep_float: layers left in float (listed as skipped).
        estimate: how candidates are scored (:class:`EstimateConfig`).
        sensitivity_images: validation images of the per-layer sensitivity analysis.
        compare_bits: uniform baselines finetuned and reported besides the one at equal size.
        finetune_epochs, finetune_lr, batch_size: the quantization-aware finetune every final model gets.
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bar on stderr.
    """
    from slimforge.compress._train import accuracy
    from slimforge.hardware import count_macs
    from slimforge.supernet import recalibrate_bn

    args = check_search_args(
        budget, BITS_BUDGET_KEYS, "the mixed-precision search", search_budget, algorithm, finetune_epochs, out_dir, overwrite
    )
    budget, search_budget, algorithm, finetune_epochs, out = (
        args.budget, args.search_budget, args.algorithm, args.finetune_epochs, args.out
    )
    choices = tuple(sorted(set(int(b) for b in bit_choices)))
    BIT_QUANTIZERS.get(quantizer)
    estimate = estimate or EstimateConfig()
    splits = load_splits(data, split_seed)
    source = load_source(model, splits, width, model_config)
    base = source.model.eval()
    input_shape = (1, *splits.input_shape)
    layers, skipped = quantizable_layers(base, keep_float)
    for s in skipped:
        warnings.warn(f"the mixed-precision search skips {s.layer}: {s.reason}", UserWarning, stacklevel=2)
    data_t = EstimateData.from_splits(splits, estimate, seed)
    float_bytes = 4 * sum(p.numel() for p in base.parameters())
    uniform_bytes = {
        b: mixed_precision_bytes(base, dict.fromkeys(layers, b), quantizer=quantizer) for b in choices
    }
    if budget.kind == "bits":
        b = int(budget.value)
        reference = mixed_precision_bytes(base, dict.fromkeys(layers, b), quantizer=quantizer)
    else:
        reference = float_bytes
    bound = budget.bound(reference)
    start = time.perf_counter()
    n_sens = min(sensitivity_images, len(data_t.val_labels))
    ranking = bit_sensitivity(
        base, layers, choices[0], data_t.val_images[:n_sens], data_t.val_labels[:n_sens], quantizer=quantizer
    )
    fitting = [b for b in choices if uniform_bytes[b] <= bound]
    equal_size = max(fitting) if fitting else None
    # Guided samples centre on the bit-width whose uniform size meets the budget exactly.
    center = float(np.interp(bound, [uniform_bytes[b] for b in choices], choices))
    guide = _guide(layers, ranking)
    space = BitPolicySpace(base, layers, choices, quantizer=quantizer, center=center, guide=guide)
    evaluator = BitPolicyEvaluator(space, data_t, estimate)
    from slimforge.search import Constraint, Problem

    problem = Problem(space, ("error", "bytes"), [evaluator], [Constraint("bytes", "<=", bound)])
    if equal_size is None:
        chosen = problem.evaluate(space.genome_of(choices[0]))
        searches: dict[str, Any] = {}
        num_evaluations, num_feasible, front = 1, 0, ()
        message = (
            f"budget {budget.text} cannot be met: every layer at {choices[0]} bits takes "
            f"{uniform_bytes[choices[0]]:,} bytes > {bound:,.0f} (float layers and scales included); "
            "showing that closest policy"
        )
    else:
        result = run_policy_search(
            problem,
            algorithm,
            budget=search_budget,
            seed=seed,
            settings=algorithm_settings,
            progress=progress,
        )
        searches = {"bits": result}
        chosen = closest(result, "bytes")
        num_evaluations, num_feasible = result.num_evaluations, result.num_feasible
        front = front_points(result, "bytes")
        message = search_message(result, "bytes", bound)
    search_s = time.perf_counter() - start
    policy = space.bits(chosen.genome)

    def final(name: str, bits: Mapping[str, int], est: float) -> tuple[AutoRow, nn.Module]:
        m = copy.deepcopy(base)
        if finetune_epochs:
            hook = BIT_QUANTIZERS.get(quantizer).qat_hook(m, bits)
            finetune_model(
                m,
                splits,
                epochs=finetune_epochs,
                lr=finetune_lr,
                batch_size=batch_size,
                seed=seed,
                hooks=[hook],
            )
        else:
            quantize_weights(m, bits, quantizer=quantizer)
            # Without a finetune, the rounded weights shift each layer's output statistics: re-estimate
            # them. After a finetune the running statistics already follow the quantized weights, and a
            # few hundred un-augmented images would estimate them worse (about 4 points on ResNet-20).
            if len(data_t.recal_images) and has_batchnorm(m):
                recalibrate_bn(m, data_t.recal_images, batch_size=estimate.batch_size)
        size = mixed_precision_bytes(m, bits, quantizer=quantizer)
        row = AutoRow(
            name=name,
            policy=",".join(str(bits[n]) for n in layers),
            estimate_accuracy_pct=est,
            val_accuracy_pct=accuracy(m, splits.val),
            test_accuracy_pct=None if splits.test is None else accuracy(m, splits.test),
            macs=count_macs(m, input_shape),
            num_params=sum(p.numel() for p in m.parameters()),
            bytes=size,
            latency_ms=None,
            cost=float(size),
            within_budget=size <= bound,
            finetune_epochs=finetune_epochs,
            avg_weight_bits=_avg_bits(m, bits),
        )
        return row, m

    rows = [
        AutoRow(
            name="original (float32)",
            policy="32 everywhere",
            estimate_accuracy_pct=estimate_accuracy(copy.deepcopy(base), data_t, estimate),
            val_accuracy_pct=accuracy(base, splits.val),
            test_accuracy_pct=None if splits.test is None else accuracy(base, splits.test),
            macs=count_macs(base, input_shape),
            num_params=sum(p.numel() for p in base.parameters()),
            bytes=float_bytes,
            latency_ms=None,
            cost=float(float_bytes),
            within_budget=float_bytes <= bound,
            finetune_epochs=0,
            avg_weight_bits=32.0,
        )
    ]
    searched_row, searched = final("searched", policy, chosen.metrics["accuracy"])
    rows.append(searched_row)
    uniform_set = sorted({b for b in compare_bits if 1 <= b <= 8} | ({equal_size} if equal_size else set()))
    for b in uniform_set:
        bits = {n: b for n in layers}
        probe = copy.deepcopy(base)
        quantize_weights(probe, bits, quantizer=quantizer)
        est = estimate_accuracy(probe, data_t, estimate)
        label = f"uniform {b}-bit" + (" (equal size)" if b == equal_size else "")
        rows.append(final(label, bits, est)[0])
    result_record = AutoBitsResult(
        model=source.label,
        data=str(splits.spec),
        budget=budget.text,
        budget_bound_bytes=bound,
        budget_met=bool(searched_row.within_budget),
        message=message,
        float_bytes=float_bytes,
        quantizer=quantizer,
        bit_choices=choices,
        estimate=estimate.describe(
            f"{quantizer} weight quantization", len(data_t.val_labels), has_batchnorm(base)
        ),
        algorithm=algorithm,
        search_budget=search_budget,
        num_evaluations=num_evaluations,
        num_feasible=num_feasible,
        search_s=search_s,
        seed=seed,
        layers=tuple(layers),
        skipped=tuple(skipped),
        sensitivity=tuple(ranking),
        policy=policy,
        uniform_bytes={str(b): v for b, v in uniform_bytes.items()},
        equal_size_bits=equal_size,
        front=front,
        rows=tuple(rows),
        finetune_epochs=finetune_epochs,
    )
    if out is not None:
        from slimforge.compress._auto_report import format_auto_bits
        from slimforge.compress._pipeline import _save_torch

        write_result(out, "auto_bits", result_record, searches)
        (out / "auto_bits.txt").write_text(format_auto_bits(result_record) + "\n", encoding="utf-8")
        _save_torch(searched, source.config, [f"auto:bits:{budget.text}"], input_shape, out / "searched")
    return result_record
