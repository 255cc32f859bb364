"""Mixed-precision search (HAQ-style): one weight bit-width per layer under a size budget.

HAQ (Wang et al., "HAQ: Hardware-Aware Automated Quantization with Mixed Precision", CVPR 2019)
gives each layer its own bit-width and beats uniform quantization at the same size. Here the policy
is a genome of :class:`BitPolicySpace` (a bit-width from {2, 3, 4, 5, 6, 8} per conv / linear
layer) searched by the policy-search engine; the objectives are the estimated error and the model's
bytes, the budget a hard constraint. Candidates are scored by post-training quantization: each
layer's weights rounded to its bit-width (:data:`BIT_QUANTIZERS`: symmetric per-output-channel
linear, or a per-layer k-means codebook as in Deep Compression), batch-norm re-calibrated, top-1 on
the validation split (:func:`estimate_accuracy`). Quantized weights are cached per (layer, bits),
so a candidate costs only the estimate's forward passes.

A per-layer sensitivity analysis (each layer alone at the lowest bit-width, the rest float) ranks
the layers; the space's guided samples give the sensitive layers more bits, which seeds the initial
population. The best feasible policy is then filled (one more bit at a time for the most
sensitive layer that still fits, :func:`fill_budget`), and it and the uniform baselines (4-bit,
8-bit, and the largest uniform bit-width within the budget, "at equal size") are finetuned with the
same quantization-aware epochs (straight-through estimator) and measured.

The budget is bytes (a bare ``--budget 0.25`` is ``size=0.25``), not a measured latency: see
:data:`COST_NOTE`, which every result repeats.

Size accounting (:func:`mixed_precision_bytes`): each quantized layer stores its weights packed at
its bit-width plus its dequantization data (a float32 scale per output channel for ``linear``, a
float32 codebook of ``2**bits`` entries for ``kmeans``); every other parameter (biases, BN, layers
kept in float) is float32. Buffers (BN running statistics) are not counted: deployment folds BN
into the conv before it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.compress.auto._budget import Budget
from slimforge.compress.auto._common import finetune_model
from slimforge.compress.auto._engine import (
    Finished,
    Found,
    SavedModel,
    SearchSetup,
    budget_problem,
)
from slimforge.compress.auto._estimate import (
    EstimateData,
    estimate_accuracy,
    has_batchnorm,
)
from slimforge.compress.auto._fill import FillResult
from slimforge.compress.auto._layer_task import LayerContext, LayerPolicyTask, estimate_data
from slimforge.compress.auto._prune_eval import sensitivity_guide
from slimforge.compress.auto._results import AutoBitsResult, AutoRow
from slimforge.compress.auto._settings import EstimateConfig, SearchSettings
from slimforge.compress.auto._spaces import BitPolicySpace
from slimforge.compress.prune import SkippedLayer
from slimforge.compress.quantize import (
    BIT_QUANTIZERS,
    average_bits,
    bit_sensitivity,
    mixed_precision_bytes,
    quantizable_layers,
    quantize_weights,
)
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = [
    "BITS_BUDGET_KEYS",
    "BitPolicyEvaluator",
    "BitsOptions",
    "BitsTask",
    "auto_bits",
]

#: the budget keys the mixed-precision search takes.
BITS_BUDGET_KEYS = ("bytes", "size", "bits")

#: why a mixed-precision budget is bytes, not a measured latency (also in every result).
COST_NOTE = (
    "budgeted in bytes, not measured latency: no runtime slimforge measures on (ONNX Runtime, and the "
    "OpenVINO, LiteRT, ExecuTorch and RKNN devices) runs convolution weights below 8 bits with faster "
    "kernels, so a measured latency cannot see the bit-widths; their speed needs a low-bit accelerator "
    "(BitOps, the joint search's cost, is that latency proxy)"
)


@dataclass(frozen=True)
class BitsOptions(JsonRecord):
    """What the mixed-precision search alone takes.

    Args:
        bit_choices: bit-widths a layer may take.
        quantizer: ``linear`` or ``kmeans`` (:data:`BIT_QUANTIZERS`).
        keep_float: layers left in float (listed as skipped).
        sensitivity_images: validation images of the per-layer sensitivity analysis.
        compare_bits: uniform baselines finetuned and reported besides the one at equal size.
    """

    bit_choices: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    quantizer: str = "linear"
    keep_float: tuple[str, ...] = ()
    sensitivity_images: int = 256
    compare_bits: tuple[int, ...] = (4, 8)

    def __post_init__(self) -> None:
        BIT_QUANTIZERS.get(self.quantizer)  # an unknown name raises with close matches
        choices = tuple(sorted(set(int(b) for b in self.bit_choices)))
        if len(choices) < 2 or not all(1 <= b <= 8 for b in choices):
            raise InvalidInputError(
                f"bit choices {tuple(self.bit_choices)!r} must be at least two integers from 1 to 8"
            )
        object.__setattr__(self, "bit_choices", choices)
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        object.__setattr__(self, "compare_bits", tuple(int(b) for b in self.compare_bits))


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
            "avg_bits": average_bits(space.model, bits),
            "size_ratio": size / self.float_bytes,
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "estimate": self.config.to_dict()}


# ---- the search -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Context(LayerContext):
    """The mixed-precision task's state between its setup and finish hooks."""

    layers: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    float_bytes: int
    uniform_bytes: dict[int, int]
    equal_size: int | None
    budget: Budget


class BitsTask(LayerPolicyTask):
    """The mixed-precision search's hooks: sensitivity-guided bit space, uniform baselines, QAT finetune."""

    result_name = "auto_bits"
    budget_keys = BITS_BUDGET_KEYS
    what = "the mixed-precision search"
    search_key = "bits"
    #: no runtime slimforge measures on runs weights below 8 bits with faster kernels (see the module doc).
    default_key = "size"

    options: BitsOptions

    def _setup(self, budget: Budget, settings: SearchSettings) -> SearchSetup:
        import warnings

        opts, choices = self.options, self.options.bit_choices
        loaded = self._load(settings)
        base, splits = loaded.base, loaded.splits
        layers, skipped = quantizable_layers(base, opts.keep_float)
        for s in skipped:
            warnings.warn(
                f"the mixed-precision search skips {s.layer}: {s.reason}", UserWarning, stacklevel=4
            )
        float_bytes = 4 * sum(p.numel() for p in base.parameters())
        uniform_bytes = {
            b: mixed_precision_bytes(base, dict.fromkeys(layers, b), quantizer=opts.quantizer)
            for b in choices
        }
        if budget.kind == "bits":
            reference = mixed_precision_bytes(
                base, dict.fromkeys(layers, int(budget.value)), quantizer=opts.quantizer
            )
        else:
            reference = float_bytes
        bound = budget.bound(reference)
        lowest = BitPolicySpace(base, layers, choices, quantizer=opts.quantizer).genome_of(choices[0])
        smallest = f"the smallest policy (every layer at {choices[0]} bits, float layers and scales included)"
        if uniform_bytes[choices[0]] > bound:
            return SearchSetup(
                None, "bytes", bound, reference, lowest, float(uniform_bytes[choices[0]]), smallest
            )
        estimate = settings.estimate
        data_t = estimate_data(splits, base, estimate, settings.seed)
        n_sens = min(opts.sensitivity_images, len(data_t.val_labels))
        ranking = bit_sensitivity(
            base,
            layers,
            choices[0],
            data_t.val_images[:n_sens],
            data_t.val_labels[:n_sens],
            quantizer=opts.quantizer,
        )
        fitting = [b for b in choices if uniform_bytes[b] <= bound]
        # Guided samples centre on the bit-width whose uniform size meets the budget exactly.
        center = float(np.interp(bound, [uniform_bytes[b] for b in choices], choices))
        space = BitPolicySpace(
            base,
            layers,
            choices,
            quantizer=opts.quantizer,
            center=center,
            guide=sensitivity_guide(layers, ranking),
        )
        evaluator = BitPolicyEvaluator(space, data_t, estimate)
        problem = budget_problem(space, evaluator, "bytes", bound)
        context = _Context(
            *loaded,
            space=space,
            data=data_t,
            estimate=estimate,
            ranking=tuple(ranking),
            layers=tuple(layers),
            skipped=tuple(skipped),
            float_bytes=float_bytes,
            uniform_bytes=uniform_bytes,
            equal_size=max(fitting) if fitting else None,
            budget=budget,
        )
        return SearchSetup(
            problem, "bytes", bound, reference, lowest, float(uniform_bytes[choices[0]]), smallest, context
        )

    def fill(self, setup: SearchSetup, genome: Genome) -> tuple[Genome, FillResult] | None:
        """One more bit at a time, the most quantization-sensitive layer first."""
        c: _Context = setup.context
        quantizer = self.options.quantizer
        return self._fill_ranked(
            setup,
            genome,
            lambda g: float(mixed_precision_bytes(c.base, c.space.bits(g), quantizer=quantizer)),
            direction=1,
        )

    def _final(
        self,
        c: _Context,
        settings: SearchSettings,
        name: str,
        bits: Mapping[str, int],
        est: float,
        bound: float,
    ) -> tuple[AutoRow, nn.Module]:
        from slimforge.hardware import count_macs
        from slimforge.supernet import recalibrate_bn
        from slimforge.training import accuracy

        quantizer = self.options.quantizer
        m = copy.deepcopy(c.base)
        if settings.finetune_epochs:
            hook = BIT_QUANTIZERS.get(quantizer).qat_hook(m, bits)
            finetune_model(m, c.splits, hooks=[hook], **settings.train)
        else:
            quantize_weights(m, bits, quantizer=quantizer)
            # Without a finetune, the rounded weights shift each layer's output statistics: re-estimate
            # them. After a finetune the running statistics already follow the quantized weights, and a
            # few hundred un-augmented images would estimate them worse (about 4 points on ResNet-20).
            if len(c.data.recal_images) and has_batchnorm(m):
                recalibrate_bn(m, c.data.recal_images, batch_size=settings.estimate.batch_size)
        size = mixed_precision_bytes(m, bits, quantizer=quantizer)
        row = AutoRow(
            name=name,
            policy=",".join(str(bits[n]) for n in c.layers),
            estimate_accuracy_pct=est,
            val_accuracy_pct=accuracy(m, c.splits.val),
            test_accuracy_pct=None if c.splits.test is None else accuracy(m, c.splits.test),
            macs=count_macs(m, c.input_shape),
            num_params=sum(p.numel() for p in m.parameters()),
            bytes=size,
            latency_ms=None,
            cost=float(size),
            within_budget=size <= bound,
            finetune_epochs=settings.finetune_epochs,
            avg_weight_bits=average_bits(m, bits),
        )
        return row, m

    def _finish(self, setup: SearchSetup, found: Found, settings: SearchSettings) -> Finished:
        from slimforge.hardware import count_macs
        from slimforge.training import accuracy

        c: _Context = setup.context
        opts, bound, base = self.options, setup.bound, c.base
        policy = c.space.bits(found.chosen.genome)
        rows = [
            AutoRow(
                name="original (float32)",
                policy="32 everywhere",
                estimate_accuracy_pct=estimate_accuracy(copy.deepcopy(base), c.data, settings.estimate),
                val_accuracy_pct=accuracy(base, c.splits.val),
                test_accuracy_pct=None if c.splits.test is None else accuracy(base, c.splits.test),
                macs=count_macs(base, c.input_shape),
                num_params=sum(p.numel() for p in base.parameters()),
                bytes=c.float_bytes,
                latency_ms=None,
                cost=float(c.float_bytes),
                within_budget=c.float_bytes <= bound,
                finetune_epochs=0,
                avg_weight_bits=32.0,
            )
        ]
        searched_row, searched = self._final(
            c, settings, "searched", policy, found.chosen.metrics["accuracy"], bound
        )
        rows.append(searched_row)
        equal = c.equal_size
        uniform_set = sorted({b for b in opts.compare_bits if 1 <= b <= 8} | ({equal} if equal else set()))
        for b in uniform_set:
            bits = dict.fromkeys(c.layers, b)
            probe = copy.deepcopy(base)
            quantize_weights(probe, bits, quantizer=opts.quantizer)
            est = estimate_accuracy(probe, c.data, settings.estimate)
            label = f"uniform {b}-bit" + (" (equal size)" if b == equal else "")
            rows.append(self._final(c, settings, label, bits, est, bound)[0])
        record = AutoBitsResult(
            model=c.source.label,
            data=str(c.splits.spec),
            budget=c.budget.text,
            budget_bound_bytes=bound,
            budget_met=bool(searched_row.within_budget),
            message=found.message,
            float_bytes=c.float_bytes,
            quantizer=opts.quantizer,
            bit_choices=opts.bit_choices,
            estimate=settings.estimate.describe(
                f"{opts.quantizer} weight quantization", len(c.data.val_labels), has_batchnorm(base)
            ),
            **found.record_fields(settings),
            layers=c.layers,
            skipped=c.skipped,
            sensitivity=c.ranking,
            policy=policy,
            uniform_bytes={str(b): v for b, v in c.uniform_bytes.items()},
            equal_size_bits=equal,
            rows=tuple(rows),
            cost_note=COST_NOTE,
        )
        saved = SavedModel(
            "searched", searched, c.source.config, (f"auto:bits:{c.budget.text}",), c.input_shape
        )
        return Finished(record, (saved,))

    def format(self, record: JsonRecord) -> str:
        from slimforge.compress.auto._report import format_auto_bits

        return format_auto_bits(record)


def auto_bits(
    model: str | nn.Module,
    data: str | DatasetSplits,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    settings: SearchSettings | None = None,
    options: BitsOptions | None = None,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **fields: Any,
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
        settings: how the search runs (:class:`SearchSettings`); the finetune is quantization-aware.
        options: what only mixed precision takes (:class:`BitsOptions`).
        model_config, width: the config that rebuilds an ``nn.Module`` ``model``; a zoo name's width.
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bar on stderr.
        **fields: any field of :class:`SearchSettings` or :class:`BitsOptions`.
    """
    return BitsTask.run(  # type: ignore[return-value]
        model,
        data,
        budget,
        out_dir,
        settings or SearchSettings(),
        options or BitsOptions(),
        model_config=model_config,
        width=width,
        overwrite=overwrite,
        progress=progress,
        fields=fields,
    )
