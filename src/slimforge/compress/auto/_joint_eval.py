"""How the joint search scores a genome and measures its final networks, on the supernet's inherited weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimforge.compress.auto._common import finetune_model
from slimforge.compress.auto._joint_space import (
    JointCosts,
    JointSpace,
    fake_quant_activation,
    quantized_paths,
)
from slimforge.compress.auto._results import AutoRow
from slimforge.compress.quantize import MixedBitHook, linear_quantize
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = [
    "JointEvaluator",
    "final_row",
    "largest_genome",
    "load_supernet_and_data",
    "quantized_accuracy",
    "smallest_genome",
]


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
            acc = quantized_accuracy(
                net, self.joint.bit_policy(joint_genome), self.activation_bits, self.data
            )
            score = _Score(acc / 100.0)
        costs = self.costs.of(self.joint, joint_genome, self.activation_bits)
        acc = 100.0 * score.accuracy
        metrics = {k: costs[k] for k in ("macs", "bitops", "bytes", "avg_bits")}
        return {"error": 100.0 - acc, "accuracy": acc, **metrics}


@dataclass(frozen=True)
class _Score:
    accuracy: float


# ---- the search -------------------------------------------------------------------------------------


def _block_macs(space: JointSpace, costs: JointCosts, layer: int, choice: int) -> int:
    return sum(costs.macs[f"choices.{layer}.{choice}.{sub}"] for sub in space.slot_paths[layer][choice])


def largest_genome(space: JointSpace, costs: JointCosts) -> Genome:
    """The block with the most MACs in every layer, every weight at 8 bits (the fractions' reference)."""
    blocks = len(space.arch_space.block_tokens)
    arch = tuple(
        max(range(min(n, blocks)), key=lambda c, i=i: _block_macs(space, costs, i, c))
        for i, n in enumerate(space.arch_space.num_choices)
    )
    return space.join(arch, 8 if 8 in space.bits else space.bits[-1])


def smallest_genome(space: JointSpace, costs: JointCosts) -> Genome:
    """The identity wherever allowed, else the cheapest block; every weight at the fewest bits."""
    blocks = len(space.arch_space.block_tokens)
    identity = space.arch_space.identity_choice
    arch = tuple(
        identity if n > blocks else min(range(n), key=lambda c, i=i: _block_macs(space, costs, i, c))
        for i, n in enumerate(space.arch_space.num_choices)
    )
    return space.canonical(space.join(arch, space.bits[0]))


@torch.no_grad()
def quantized_accuracy(
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


def final_row(
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
                lambda _m, inp: (fake_quant_activation(inp[0], activation_bits), *inp[1:])
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
        split: quantized_accuracy(net, bits, activation_bits, data, recalibrate=not train["epochs"])
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


def load_supernet_and_data(
    supernet: str | Path | nn.Module, data: str | DatasetSplits | None
) -> tuple[Any, DatasetSplits, str]:
    """(the supernet, its data splits, a label): a run directory is loaded with its own split."""
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
