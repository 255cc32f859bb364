"""Joint architecture + bit-width search on a trained supernet (APQ-style), and its sequential baseline.

APQ (Wang et al., "APQ: Joint Search for Network Architecture, Pruning and Quantization Policy",
CVPR 2020) searches the architecture and each layer's bit-width together, because the best
architecture at 4 bits is not the best float architecture quantized. Here the genome of
:class:`JointSpace` is the layer-wise space's architecture genes (``mbv2``, ``shufflenet``) followed
by one weight bit-width gene per conv / linear position (the stem's, each searchable layer's,
the head's and the classifier's). Accuracy is that of the *quantized inherited-weight*
sub-network: the chosen path's weights rounded per layer (symmetric per-output-channel, as
:func:`linear_quantize`), activations fake-quantized to ``activation_bits`` per tensor (each batch's
range), batch-norm re-calibrated on training images, top-1 on the validation split
(:func:`slimforge.supernet.score_many`).

Cost: ONNX Runtime on this CPU runs every weight width from 2 to 8 bits with the same INT8
kernels, so a measured latency cannot see the bit-widths. The bit-aware cost is therefore
analytic: **BitOps** = sum over layers of MACs x weight bits x activation bits (the cost model of
bit-serial / mixed-precision accelerators such as BitFusion, used by APQ's and HAQ's follow-ups as
their latency proxy), with MACs per layer counted once from each block's real shapes; plus the
model's bytes (packed weights, a float32 scale per output channel, other parameters float32).

The baseline searches the architecture first in float (inherited-weight accuracy, the same engine,
budget and evaluations), with the budget evaluated at a uniform bit-width, then quantizes that
architecture uniformly: "architecture, then quantization", once per bit-width in ``baseline_bits``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.compress._auto_bits import MixedBitHook, linear_quantize
from slimforge.compress._auto_common import (
    AutoRow,
    PolicyPoint,
    check_algorithm,
    check_count,
    check_out_dir,
    closest,
    finetune_model,
    front_points,
    run_policy_search,
    search_message,
    write_result,
)
from slimforge.compress._budget import Budget, parse_budget
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.hardware._json import JsonRecord
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = [
    "JOINT_BUDGET_KEYS",
    "BaselineFront",
    "JointCosts",
    "JointEvaluator",
    "JointSearchResult",
    "JointSpace",
    "joint_search",
]

#: the budget keys the joint search takes.
JOINT_BUDGET_KEYS = ("bitops", "macs", "bytes", "size")
_QUANTIZED = (nn.Conv2d, nn.Linear)


def _separate_probe(space: SearchSpace) -> nn.Module:
    """An (untrained) separate-weights supernet of ``space``, for layer paths and costs only."""
    import copy

    probe_space = copy.copy(space)
    if getattr(probe_space, "sharing", "separate") != "separate":
        probe_space.sharing = "separate"  # type: ignore[attr-defined]
    return probe_space.supernet(num_classes=2)


def _weighted(module: nn.Module, prefix: str) -> list[str]:
    return [f"{prefix}{n}".rstrip(".") for n, m in module.named_modules() if type(m) in _QUANTIZED]


class JointSpace(SearchSpace):
    """Architecture genes of a layer-wise space, then one weight bit-width gene per conv / linear position.

    Bit genes, in order: the stem's convs, then for each searchable layer as many genes as its
    block choice with the most convs has (its convs in order), then the head's convs and the
    classifier. :meth:`canonical` applies the architecture space's canonical form, moves each
    layer's bit genes with it, and sets the genes no conv uses (identity layers, positions a block
    does not have) to the largest bit-width, so equal quantized networks get equal genomes.

    Args:
        arch_space: a layer-wise space (``mbv2``, ``shufflenet``) whose supernet is trained.
        bits: bit-width choices.
        center: bit-width that guided samples are drawn around (None: the middle choice).
        supernet: the space's supernet, read for its layer paths (None builds one).
    """

    name = "joint"

    def __init__(
        self,
        arch_space: SearchSpace,
        bits: Sequence[int] = (2, 3, 4, 5, 6, 8),
        *,
        center: float | None = None,
        supernet: nn.Module | None = None,
    ) -> None:
        from slimforge.spaces._mbv2_shuffle_layerwise import LayerwiseSpace

        if not isinstance(arch_space, LayerwiseSpace):
            raise InvalidInputError(
                "joint architecture + bit-width search needs a layer-wise space (mbv2, shufflenet); "
                f"got {arch_space.name!r}"
            )
        self.bits = tuple(sorted(set(int(b) for b in bits)))
        if len(self.bits) < 2 or not all(1 <= b <= 8 for b in self.bits):
            raise InvalidInputError(f"bit-widths {tuple(bits)!r} must be at least two integers from 1 to 8")
        self.arch_space = arch_space
        self.center = center
        # Layer paths and costs come from a separate-weights probe: one module per block choice,
        # named as the standalone network's blocks whatever the trained supernet shares.
        probe = supernet if supernet is not None and hasattr(supernet, "choices") else _separate_probe(arch_space)
        self.probe = probe
        self.front_paths = tuple(_weighted(probe.stem, "stem."))
        self.back_paths = tuple(_weighted(probe.head, "head.")) + ("classifier",)
        # slot_paths[i][c]: the conv/linear paths of block choice c inside searchable layer i.
        self.slot_paths = tuple(
            tuple(tuple(_weighted(block, "")) for block in blocks) for blocks in probe.choices
        )
        self.slot_width = tuple(max(len(p) for p in choices) for choices in self.slot_paths)
        offsets, at = [], arch_space.num_genes + len(self.front_paths)
        for width in self.slot_width:
            offsets.append(at)
            at += width
        self.slot_offset = tuple(offsets)
        self.back_offset = at

    # ---- genome layout
    @property
    def num_arch_genes(self) -> int:
        """Leading genes that are the architecture."""
        return self.arch_space.num_genes

    @property
    def num_choices(self) -> list[int]:
        n_bits = len(self.front_paths) + sum(self.slot_width) + len(self.back_paths)
        return list(self.arch_space.num_choices) + [len(self.bits)] * n_bits

    def split(self, genome: Sequence[int]) -> tuple[Genome, Genome]:
        """(architecture genome, bit genes)."""
        genome = self.validate(genome)
        return genome[: self.num_arch_genes], genome[self.num_arch_genes :]

    def join(self, arch: Sequence[int], bits: Sequence[int] | int) -> Genome:
        """A joint genome from an architecture and bit genes (or one bit-width for every gene)."""
        arch = self.arch_space.validate(arch)
        n = self.num_genes - self.num_arch_genes
        genes = (self.bits.index(int(bits)),) * n if isinstance(bits, (int, np.integer)) else tuple(bits)
        return self.validate(arch + genes)

    def _layers(self, genome: Genome, prefix_for_slot: Any) -> dict[str, int]:
        arch = genome[: self.num_arch_genes]
        out: dict[str, int] = {}
        at = self.num_arch_genes
        for path in self.front_paths:
            out[path] = self.bits[genome[at]]
            at += 1
        identity = getattr(self.arch_space, "identity_choice", -1)
        for i, choice in enumerate(arch):
            if choice == identity:
                continue
            for j, sub in enumerate(self.slot_paths[i][choice]):
                out[prefix_for_slot(i, choice) + sub] = self.bits[genome[self.slot_offset[i] + j]]
        for k, path in enumerate(self.back_paths):
            out[path] = self.bits[genome[self.back_offset + k]]
        return out

    def bit_policy(self, genome: Sequence[int]) -> dict[str, int]:
        """Module path in the standalone network (``build``) -> weight bit-width."""
        return self._layers(self.validate(genome), lambda i, c: f"layers.{i}.")

    def supernet_bit_policy(self, genome: Sequence[int]) -> dict[str, int]:
        """Module path in the supernet -> weight bit-width."""
        return self._layers(self.validate(genome), lambda i, c: f"choices.{i}.{c}.")

    # ---- operators
    def _canonical(self, genome: Genome) -> Genome:
        arch = list(genome[: self.num_arch_genes])
        genes = list(genome)
        identity = self.arch_space.identity_choice
        allowed = [n > len(self.arch_space.block_tokens) for n in self.arch_space.num_choices]
        # The layer-wise canonical form moves identities behind the blocks of a run of shape-keeping
        # layers; move each layer's bit genes with its block.
        order = list(range(len(arch)))
        start = 0
        while start < len(arch):
            if not allowed[start]:
                start += 1
                continue
            end = start
            while end < len(arch) and allowed[end]:
                end += 1
            run = list(range(start, end))
            blocks = [i for i in run if arch[i] != identity]
            order[start:end] = blocks + [i for i in run if arch[i] == identity]
            start = end
        new_arch = tuple(arch[i] for i in order)
        if new_arch != self.arch_space.canonical(tuple(arch)):
            raise InvalidInputError(
                f"{self.arch_space.name}: its canonical form is not the layer-wise one joint search expects"
            )
        top = len(self.bits) - 1
        out = list(new_arch) + genes[self.num_arch_genes :]
        for dst, src in enumerate(order):
            width = self.slot_width[dst]
            used = 0 if new_arch[dst] == identity else len(self.slot_paths[dst][new_arch[dst]])
            block = genome[self.slot_offset[src] : self.slot_offset[src] + width]
            out[self.slot_offset[dst] : self.slot_offset[dst] + width] = [
                block[j] if j < used else top for j in range(width)
            ]
        return tuple(out)

    def _sample(self, rng: np.random.Generator) -> Genome:
        arch = self.arch_space.sample(rng)
        n = self.num_genes - self.num_arch_genes
        if rng.random() < 0.5:
            genes = tuple(int(rng.integers(len(self.bits))) for _ in range(n))
        else:
            center = self.bits[len(self.bits) // 2] if self.center is None else self.center
            level = float(np.interp(center, self.bits, np.arange(len(self.bits)))) + rng.normal(0.0, 1.0)
            top = len(self.bits) - 1
            genes = tuple(int(min(top, max(0, round(level + rng.normal(0.0, 0.75))))) for _ in range(n))
        return arch + genes

    def _to_string(self, genome: Genome) -> str:
        arch, genes = genome[: self.num_arch_genes], genome[self.num_arch_genes :]
        return self.arch_space.to_string(arch) + "|" + ",".join(str(self.bits[g]) for g in genes)

    def _from_string(self, text: str) -> Genome:
        arch_text, sep, bits_text = text.partition("|")
        if not sep:
            raise InvalidInputError(
                f"joint genome {text!r} must read ARCH|BITS,BITS,... (the architecture, then bit-widths)"
            )
        arch = self.arch_space.from_string(arch_text)
        try:
            values = [int(t) for t in bits_text.split(",")]
        except ValueError:
            raise InvalidInputError(f"joint genome {text!r}: the bit-widths must be integers") from None
        bad = [v for v in values if v not in self.bits]
        if bad:
            raise InvalidInputError(f"joint genome {text!r}: bit-width {bad[0]} is not one of {self.bits}")
        return arch + tuple(self.bits.index(v) for v in values)

    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        return self.arch_space.build(genome[: self.num_arch_genes], num_classes)

    def _supernet(self, num_classes: int):  # type: ignore[no-untyped-def]
        return self.arch_space.supernet(num_classes)

    def __repr__(self) -> str:
        return f"JointSpace({self.arch_space!r}, bits={self.bits})"


# ---- costs ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class JointCosts:
    """Per-module MACs and parameters of a supernet at one input shape, for the analytic costs.

    ``macs[path]`` and ``weights[path]`` / ``channels[path]`` are per conv / linear supernet path;
    ``extra[i][c]`` the other parameters (BN, biases) of block choice c of layer i, ``fixed_extra``
    those of the stem, head and classifier.
    """

    macs: dict[str, int]
    weights: dict[str, int]
    channels: dict[str, int]
    extra: tuple[tuple[int, ...], ...]
    fixed_extra: int

    @classmethod
    def measure(cls, space: JointSpace, supernet: nn.Module, input_shape: Sequence[int]) -> JointCosts:
        """Count every module's MACs: one batch-1 forward per block choice (layer input shapes are fixed)."""
        macs: dict[str, int] = {}
        names = {m: n for n, m in supernet.named_modules()}

        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                per_out = (module.in_channels // module.groups) * kh * kw
            else:
                per_out = module.in_features
            macs[names[module]] = int(output.numel() // output.shape[0]) * per_out

        handles = [m.register_forward_hook(hook) for m in supernet.modules() if type(m) in _QUANTIZED]
        was = supernet.training
        supernet.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(tuple(input_shape))
                for c in range(len(space.arch_space.block_tokens)):
                    supernet(x, tuple(c for _ in range(space.num_arch_genes)))
        finally:
            for h in handles:
                h.remove()
            supernet.train(was)
        weights = {p: supernet.get_submodule(p).weight.numel() for p in macs}
        channels = {p: supernet.get_submodule(p).weight.shape[0] for p in macs}

        def other(module: nn.Module) -> int:
            quantized = {id(m.weight) for m in module.modules() if type(m) in _QUANTIZED}
            return sum(p.numel() for p in module.parameters() if id(p) not in quantized)

        extra = tuple(tuple(other(block) for block in blocks) for blocks in supernet.choices)
        fixed = other(supernet.stem) + other(supernet.head) + other(supernet.classifier)
        return cls(macs, weights, channels, extra, fixed)

    def of(self, space: JointSpace, genome: Sequence[int], activation_bits: int) -> dict[str, float]:
        """``macs``, ``bitops``, ``bytes``, ``float_bytes`` and ``avg_bits`` of a joint genome."""
        policy = space.supernet_bit_policy(genome)
        arch = space.split(genome)[0]
        identity = space.arch_space.identity_choice
        extra = self.fixed_extra + sum(self.extra[i][c] for i, c in enumerate(arch) if c != identity)
        macs = sum(self.macs[p] for p in policy)
        bitops = sum(self.macs[p] * b * activation_bits for p, b in policy.items())
        packed = sum(math.ceil(self.weights[p] * b / 8) + 4 * self.channels[p] for p, b in policy.items())
        n_weights = sum(self.weights[p] for p in policy)
        return {
            "macs": float(macs),
            "bitops": float(bitops),
            "bytes": float(packed + 4 * extra),
            "float_bytes": float(4 * (n_weights + extra)),
            "avg_bits": sum(self.weights[p] * b for p, b in policy.items()) / max(1, n_weights),
        }


def _fake_quant_activation(x: torch.Tensor, bits: int) -> torch.Tensor:
    # Asymmetric per-tensor with the batch's own range (zero included): dynamic quantization. The
    # fused kernel passes gradients straight through inside the range, so it also serves QAT.
    lo, hi = torch.aminmax(x.detach())
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    levels = 2**bits - 1
    scale = max(hi - lo, 1e-12) / levels
    return torch.fake_quantize_per_tensor_affine(x, scale, int(round(-lo / scale)), 0, levels)


@contextlib.contextmanager
def quantized_paths(model: nn.Module, bits: Mapping[str, int], activation_bits: int | None) -> Iterator[None]:
    """Within the block, ``model``'s named layers hold weights rounded to their bit-width and their
    inputs are fake-quantized to ``activation_bits`` (32: left float); the float weights are put back
    afterwards."""
    saved: dict[str, torch.Tensor] = {}
    handles = []
    try:
        with torch.no_grad():
            for path, b in bits.items():
                w = model.get_submodule(path).weight
                saved[path] = w.detach().clone()
                w.copy_(linear_quantize(saved[path], b))
        if activation_bits < 32:
            for path in bits:
                handles.append(
                    model.get_submodule(path).register_forward_pre_hook(
                        lambda _m, inp: (_fake_quant_activation(inp[0], activation_bits), *inp[1:])
                    )
                )
        yield
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for path, w in saved.items():
                model.get_submodule(path).weight.copy_(w)


class JointEvaluator(Evaluator):
    """Error of the quantized inherited-weight sub-network, BitOps, MACs and bytes of a joint genome.

    With ``float_arch=True`` it evaluates plain architecture genomes of the arch space in float
    instead (the sequential baseline's first step), with costs at uniform ``baseline_bits``.
    Runs in-process: it holds the supernet.
    """

    def __init__(
        self,
        space: SearchSpace,
        joint: JointSpace,
        supernet: nn.Module,
        data: Any,
        costs: JointCosts,
        *,
        activation_bits: int,
        baseline_bits: int | None = None,
    ) -> None:
        super().__init__(space, ("error", "accuracy", "macs", "bitops", "bytes", "avg_bits"))
        self.joint = joint
        self.supernet = supernet
        self.data = data
        self.costs = costs
        self.activation_bits = activation_bits
        self.baseline_bits = baseline_bits

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        from slimforge.supernet import score_many

        if self.baseline_bits is not None:  # a float architecture, costed at uniform bits
            joint_genome = self.joint.join(genome, self.baseline_bits)
            score = score_many(self.supernet, [genome], self.data)[0]
        elif hasattr(self.supernet, "choices"):  # quantize the supernet's own modules of the path
            joint_genome = self.joint.validate(genome)
            arch = genome[: self.joint.num_arch_genes]
            bits = self.joint.supernet_bit_policy(joint_genome)
            with quantized_paths(self.supernet, bits, self.activation_bits):
                score = score_many(self.supernet, [arch], self.data)[0]
        else:  # an elastic supernet shares its modules between choices: quantize the extracted network
            joint_genome = self.joint.validate(genome)
            net = self.supernet.extract(genome[: self.joint.num_arch_genes]).eval()
            acc = _quantized_accuracy(net, self.joint.bit_policy(joint_genome), self.activation_bits, self.data)
            score = _Score(acc / 100.0)
        costs = self.costs.of(self.joint, joint_genome, self.activation_bits)
        acc = 100.0 * score.accuracy
        metrics = {k: costs[k] for k in ("macs", "bitops", "bytes", "avg_bits")}
        return {"error": 100.0 - acc, "accuracy": acc, **metrics}


@dataclass(frozen=True)
class _Score:
    accuracy: float


# ---- the search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineFront(JsonRecord):
    """The float architecture search's front of one sequential baseline (costs at uniform ``bits``)."""

    bits: int
    front: tuple[PolicyPoint, ...]


@dataclass(frozen=True)
class JointSearchResult(JsonRecord):
    """What :func:`joint_search` found, and the sequential baselines at the same budget.

    ``reference`` holds the costs fractions are taken of: the space's largest network (the block
    with most MACs in every layer) at 8-bit weights and ``activation_bits`` activations.
    ``rows`` are the joint result and, per bit-width of ``baseline_bits``, "float architecture
    search, then uniform quantization"; every row is the quantized inherited-weight network
    (finetuned ``finetune_epochs`` with quantization-aware training when > 0), BN re-calibrated,
    accuracy on validation and test. ``policy`` is the joint genome as ``ARCH|BITS,...`` and
    ``bits`` maps the standalone network's layers to their bit-widths.
    """

    supernet: str
    data: str
    budget: str
    budget_metric: str
    budget_bound: float
    budget_met: bool
    message: str
    reference: dict[str, float]
    cost_model: str
    activation_bits: int
    bit_choices: tuple[int, ...]
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    policy: str
    bits: dict[str, int]
    front: tuple[PolicyPoint, ...]
    baseline_fronts: tuple[BaselineFront, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int


def _block_macs(space: JointSpace, costs: JointCosts, layer: int, choice: int) -> int:
    return sum(costs.macs[f"choices.{layer}.{choice}.{sub}"] for sub in space.slot_paths[layer][choice])


def _largest(space: JointSpace, costs: JointCosts) -> Genome:
    """The block with the most MACs in every layer, every weight at 8 bits (the fractions' reference)."""
    blocks = len(space.arch_space.block_tokens)
    arch = tuple(
        max(range(min(n, blocks)), key=lambda c, i=i: _block_macs(space, costs, i, c))
        for i, n in enumerate(space.arch_space.num_choices)
    )
    return space.join(arch, 8 if 8 in space.bits else space.bits[-1])


def _smallest(space: JointSpace, costs: JointCosts) -> Genome:
    """The identity wherever allowed, else the cheapest block; every weight at the fewest bits."""
    blocks = len(space.arch_space.block_tokens)
    identity = space.arch_space.identity_choice
    arch = tuple(
        identity if n > blocks else min(range(n), key=lambda c, i=i: _block_macs(space, costs, i, c))
        for i, n in enumerate(space.arch_space.num_choices)
    )
    return space.canonical(space.join(arch, space.bits[0]))


@torch.no_grad()
def _quantized_accuracy(
    net: nn.Module, bits: Mapping[str, int], activation_bits: int, data: Any, *, recalibrate: bool = True
) -> float:
    """Top-1 (%) of ``net`` with its weights and activations quantized, after BN re-calibration.

    ``recalibrate=False`` keeps the running statistics, for a network finetuned quantization-aware:
    they already follow its quantized weights, and a few hundred un-augmented images estimate them worse.
    """
    from slimforge.supernet import recalibrate_bn

    with quantized_paths(net, bits, activation_bits):
        if recalibrate and len(data.recal_images):
            recalibrate_bn(net, data.recal_images, batch_size=data.recal_batch_size)
        net.eval()
        correct = 0
        for x, y in zip(data.images.split(data.batch_size), data.labels.split(data.batch_size)):
            correct += int((net(x).argmax(1) == y).sum())
    return 100.0 * correct / len(data.labels)


def _final_row(
    name: str,
    space: JointSpace,
    supernet: Any,
    genome: Genome,
    splits: DatasetSplits,
    evals: Mapping[str, Any],
    costs: JointCosts,
    *,
    estimate: float,
    activation_bits: int,
    metric: str,
    bound: float,
    train: Mapping[str, Any],
) -> AutoRow:
    """Extract the genome's network, finetune it quantization-aware if asked, measure it."""
    # Channels-last like the evaluation tensors: NHWC convolutions run about twice as fast on CPU.
    net = supernet.extract(space.split(genome)[0]).eval().to(memory_format=torch.channels_last)
    bits = space.bit_policy(genome)
    if train["epochs"] and activation_bits < 32:
        handles = [
            net.get_submodule(p).register_forward_pre_hook(
                lambda _m, inp: (_fake_quant_activation(inp[0], activation_bits), *inp[1:])
            )
            for p in bits
        ]
    else:
        handles = []
    try:
        finetune_model(net, splits, hooks=[MixedBitHook(bits, linear_quantize)], **train)
    finally:
        for h in handles:
            h.remove()
    accs = {
        split: _quantized_accuracy(net, bits, activation_bits, data, recalibrate=not train["epochs"])
        for split, data in evals.items()
    }
    c = costs.of(space, genome, activation_bits)
    return AutoRow(
        name=name,
        policy=space.to_string(genome),
        estimate_accuracy_pct=estimate,
        val_accuracy_pct=accs["val"],
        test_accuracy_pct=accs.get("test"),
        macs=int(c["macs"]),
        num_params=sum(p.numel() for p in net.parameters()),
        bytes=int(c["bytes"]),
        latency_ms=None,
        cost=c[metric],
        within_budget=c[metric] <= bound,
        finetune_epochs=int(train["epochs"]),
        avg_weight_bits=c["avg_bits"],
        bitops=c["bitops"],
    )


def _load(
    supernet: str | Path | nn.Module, data: str | DatasetSplits | None
) -> tuple[Any, DatasetSplits, str]:
    if isinstance(supernet, nn.Module):
        if not isinstance(data, DatasetSplits):
            raise InvalidInputError(
                "a supernet module needs its data as loaded splits (slimforge.data.load_dataset)"
            )
        return supernet, data, type(supernet).__name__
    from slimforge.data import load_dataset
    from slimforge.supernet import load_supernet

    net, config, _ = load_supernet(supernet)
    if not isinstance(data, DatasetSplits):
        # The run's own split: the same validation images its trainer held out.
        data = load_dataset(data or config.data, val_fraction=config.val_fraction, seed=config.seed)
    return net, data, str(supernet)


def joint_search(
    supernet: str | Path | nn.Module,
    data: str | DatasetSplits | None,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    search_budget: int = 100,
    algorithm: str = "nsga2",
    algorithm_settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    bit_choices: Sequence[int] = (2, 3, 4, 5, 6, 8),
    activation_bits: int = 8,
    baseline_bits: Sequence[int] = (4, 8),
    recal_images: int = 256,
    finetune_epochs: int = 0,
    finetune_lr: float = 0.01,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = False,
) -> JointSearchResult:
    """Search architecture and per-layer bit-widths together on a trained supernet, under ``budget``.

    Args:
        supernet: a ``slimforge supernet train`` run directory (layer-wise space), or a supernet
            module (then give ``data`` as loaded splits).
        data: a data spec or splits; None uses the run's data and validation split.
        budget: ``bitops=F``, ``macs=F``, ``size=F`` (fractions of the reference, see
            :class:`JointSearchResult`) or ``bytes=N``.
        out_dir: gets ``joint_search.json``, ``joint_search.txt`` and ``searches.json``; None writes nothing.
        search_budget: distinct genomes evaluated by the joint search, and again by each baseline search.
        algorithm, algorithm_settings: the engine's algorithm and setting overrides.
        seed: seeds the searches, the re-calibration images and the finetuning.
        bit_choices: weight bit-widths a layer may take.
        activation_bits: activation bit-width (fake-quantized, and counted in BitOps); 32 leaves
            activations float (and counts them at 32 bits).
        baseline_bits: uniform bit-widths of the sequential baselines.
        recal_images: training images that re-calibrate BN for every evaluation.
        finetune_epochs, finetune_lr, batch_size: quantization-aware finetune of each final network
            (0: none; the rows are then the inherited weights).
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bars on stderr.
    """
    from slimforge.search import Constraint, Problem
    from slimforge.supernet import EvalData

    budget = parse_budget(budget, JOINT_BUDGET_KEYS, what="the joint architecture + bit-width search")
    search_budget = check_count("search budget", search_budget, 1)
    algorithm = check_algorithm(algorithm)
    finetune_epochs = check_count("finetune epochs", finetune_epochs, 0)
    activation_bits = check_count("activation bits", activation_bits, 2)
    if 16 < activation_bits < 32 or activation_bits > 32:
        raise InvalidInputError(
            f"activation bits must be 2 to 16, or 32 for float activations; got {activation_bits}"
        )
    out = check_out_dir(out_dir, overwrite)
    net, splits, label = _load(supernet, data)
    net.eval()
    space = JointSpace(net.space, bit_choices, supernet=net)
    for b in baseline_bits:
        if b not in space.bits:
            raise InvalidInputError(f"baseline bit-width {b} is not one of the choices {space.bits}")
    arch_space = space.arch_space
    costs = JointCosts.measure(space, space.probe, (1, *splits.input_shape))
    evals = {"val": EvalData.from_splits(splits, split="val", recal_images=recal_images, seed=seed)}
    if splits.test is not None:
        evals["test"] = EvalData.from_splits(splits, split="test", recal_images=recal_images, seed=seed)
    largest = costs.of(space, _largest(space, costs), activation_bits)
    reference = {"bitops": largest["bitops"], "macs": largest["macs"], "bytes": largest["float_bytes"]}
    metric = budget.metric
    bound = budget.bound(reference[metric])
    constraint = Constraint(metric, "<=", bound)
    smallest = _smallest(space, costs)
    start = time.perf_counter()
    evaluator = JointEvaluator(space, space, net, evals["val"], costs, activation_bits=activation_bits)
    problem = Problem(space, ("error", metric), [evaluator], [constraint])
    search = dict(
        algorithm=algorithm, budget=search_budget, seed=seed, settings=algorithm_settings, progress=progress
    )
    searches: dict[str, Any] = {}
    fronts: list[BaselineFront] = []
    if costs.of(space, smallest, activation_bits)[metric] > bound:
        chosen = problem.evaluate(smallest)
        num_evaluations, num_feasible, front = 1, 0, ()
        message = (
            f"budget {budget.text} cannot be met: the smallest network at {space.bits[0]} bits has {metric} "
            f"{chosen.metrics[metric]:.4g} > {bound:.4g}; showing that closest network"
        )
    else:
        result = run_policy_search(problem, **search)
        searches["joint"] = result
        chosen = closest(result, metric)
        num_evaluations, num_feasible = result.num_evaluations, result.num_feasible
        front = front_points(result, metric)
        message = search_message(result, metric, bound, "genomes")
    train = dict(epochs=finetune_epochs, lr=finetune_lr, batch_size=batch_size, seed=seed)
    row = functools.partial(
        _final_row, space=space, supernet=net, splits=splits, evals=evals, costs=costs,
        activation_bits=activation_bits, metric=metric, bound=bound, train=train,
    )
    rows = [row("joint", genome=chosen.genome, estimate=chosen.metrics["accuracy"])]
    for b in baseline_bits:
        base_eval = JointEvaluator(
            arch_space, space, net, evals["val"], costs, activation_bits=activation_bits, baseline_bits=b
        )
        base_problem = Problem(arch_space, ("error", metric), [base_eval], [constraint])
        if costs.of(space, space.join(space.split(smallest)[0], b), activation_bits)[metric] > bound:
            message += f"; no architecture meets the budget at uniform {b} bits: no sequential baseline there"
            continue
        found = run_policy_search(base_problem, **search)
        searches[f"float_arch_then_{b}bit"] = found
        fronts.append(BaselineFront(int(b), front_points(found, metric)))
        if not found.num_feasible:
            message += f"; the float search at {b} bits found no architecture within budget (closest shown)"
        genome = space.canonical(space.join(closest(found, metric).genome, b))
        quantized = evaluator.evaluate(genome)["accuracy"]
        rows.append(row(f"float arch, then {b}-bit", genome=genome, estimate=quantized))
    search_s = time.perf_counter() - start
    record = JointSearchResult(
        supernet=label,
        data=str(splits.spec),
        budget=budget.text,
        budget_metric=metric,
        budget_bound=bound,
        budget_met=bool(rows[0].within_budget),
        message=message,
        reference=reference,
        cost_model=(
            f"BitOps = sum of MACs x weight bits x {activation_bits} activation bits per conv/linear layer "
            "(analytic, bit-aware latency proxy); bytes = packed weights + float32 scale per channel "
            "+ float32 other parameters"
        ),
        activation_bits=activation_bits,
        bit_choices=space.bits,
        estimate=(
            f"top-1 accuracy on {len(evals['val'].labels)} validation images of the inherited-weight "
            f"sub-network, weights rounded per layer (symmetric per-channel), activations "
            f"{activation_bits}-bit per tensor, BN re-calibrated on {len(evals['val'].recal_images)} "
            "training images"
        ),
        algorithm=algorithm,
        search_budget=search_budget,
        num_evaluations=num_evaluations,
        num_feasible=num_feasible,
        search_s=search_s,
        seed=seed,
        policy=space.to_string(chosen.genome),
        bits=space.bit_policy(chosen.genome),
        front=front,
        baseline_fronts=tuple(fronts),
        rows=tuple(rows),
        finetune_epochs=finetune_epochs,
    )
    if out is not None:
        from slimforge.compress._auto_report import format_joint

        write_result(out, "joint_search", record, searches)
        (out / "joint_search.txt").write_text(format_joint(record) + "\n", encoding="utf-8")
    return record
