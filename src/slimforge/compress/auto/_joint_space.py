"""The joint architecture + bit-width space (APQ-style) and its analytic costs.

The genome of :class:`JointSpace` is a layer-wise space's architecture genes (``mbv2``,
``shufflenet``) followed by one weight bit-width gene per conv / linear position (the stem's, each
searchable layer's, the head's and the classifier's). :class:`JointCosts` counts MACs, BitOps
(MACs x weight bits x activation bits) and bytes of a joint genome from per-module counts made once;
:func:`quantized_paths` rounds a network's named layers to their bit-widths for the duration of a block.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.compress.quantize import linear_quantize
from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace

__all__ = ["JointCosts", "JointSpace", "fake_quant_activation", "quantized_paths"]

_QUANTIZED = (nn.Conv2d, nn.Linear)


def _separate_probe(space: SearchSpace) -> nn.Module:
    """An (untrained) separate-weights supernet of ``space``, for layer paths and costs only."""
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
        # A layer-wise space (mbv2, shufflenet): block tokens per layer and an identity choice.
        if not all(hasattr(arch_space, a) for a in ("block_tokens", "identity_choice")):
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
        probe = (
            supernet if supernet is not None and hasattr(supernet, "choices") else _separate_probe(arch_space)
        )
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


def fake_quant_activation(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` fake-quantized to ``bits`` with the batch's own range (zero included), per tensor."""
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
                        lambda _m, inp: (fake_quant_activation(inp[0], activation_bits), *inp[1:])
                    )
                )
        yield
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for path, w in saved.items():
                model.get_submodule(path).weight.copy_(w)
