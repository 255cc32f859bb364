"""Per-layer compression policies as search spaces: one gene per layer, choosing a value for it.

A policy space is a :class:`slimforge.spaces.SearchSpace` whose genome is one choice index per
layer (a pruning ratio per prunable group, a bit-width per quantizable layer), so every algorithm
of :mod:`slimforge.search` searches it unchanged. ``build(genome)`` returns the model with the policy
applied (a copy); there is no supernet.

Sampling is half uniform, half *guided*: a global level is drawn around ``center`` (e.g. the
uniform ratio that meets the budget, or the bit-width whose uniform size meets it) and each layer
moves from it by ``guide`` (e.g. +1 for the most quantization-sensitive layers, which get more
bits; HAQ, Wang et al., CVPR 2019) plus noise. Guided samples put the initial population near the
budget instead of spreading it over costs nobody asked for; the uniform half keeps exploring.
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace

__all__ = ["BitPolicySpace", "LayerPolicySpace", "PrunePolicySpace"]


class LayerPolicySpace(SearchSpace):
    """One gene per layer in :attr:`layers`; gene ``i`` picks ``values[k]`` for layer ``i``.

    Args:
        layers: module paths, one per gene, in forward order.
        values: the choices of every gene (ascending).
        center: the value guided samples are drawn around (None: the middle of ``values``).
        guide: per-layer shift in [-1, 1] of guided samples, in units of one choice (None: no shift).
    """

    name = "policy"

    def __init__(
        self,
        layers: Sequence[str],
        values: Sequence[float],
        *,
        center: float | None = None,
        guide: Sequence[float] | None = None,
    ) -> None:
        self.layers = tuple(layers)
        self.values = tuple(values)
        if not self.layers:
            raise InvalidInputError(f"a {self.name} space needs at least one layer")
        if len(self.values) < 2 or list(self.values) != sorted(set(self.values)):
            raise InvalidInputError(
                f"{self.name} choices {self.values!r} must be at least two ascending values"
            )
        self.center = center
        self.guide = None if guide is None else tuple(float(g) for g in guide)
        if self.guide is not None and len(self.guide) != len(self.layers):
            raise InvalidInputError(f"guide has {len(self.guide)} entries for {len(self.layers)} layers")

    @property
    def num_choices(self) -> list[int]:
        return [len(self.values)] * len(self.layers)

    def policy(self, genome: Sequence[int]) -> dict[str, float]:
        """Layer path -> chosen value."""
        genome = self.validate(genome)
        return {layer: self.values[g] for layer, g in zip(self.layers, genome)}

    def genome_of(self, policy: Mapping[str, float] | float) -> Genome:
        """The genome nearest to ``policy`` (a value per layer, or one value for every layer)."""

        def index(value: float) -> int:
            return int(np.argmin([abs(v - value) for v in self.values]))

        if isinstance(policy, (int, float)):
            return tuple(index(float(policy)) for _ in self.layers)
        missing = [layer for layer in self.layers if layer not in policy]
        if missing:
            raise InvalidInputError(f"the policy gives no value for {', '.join(missing)}")
        return tuple(index(float(policy[layer])) for layer in self.layers)

    def _sample(self, rng: np.random.Generator) -> Genome:
        n = len(self.values)
        if rng.random() < 0.5:
            return tuple(int(rng.integers(n)) for _ in self.layers)
        center = self.values[n // 2] if self.center is None else self.center
        # The center as a fractional index, so a center between two choices is honoured on average.
        idx = float(np.interp(center, self.values, np.arange(n)))
        level = idx + rng.normal(0.0, 1.0)
        guide = self.guide or (0.0,) * len(self.layers)
        out = []
        for shift in guide:
            value = level + shift + rng.normal(0.0, 0.75)
            out.append(int(min(n - 1, max(0, round(value)))))
        return tuple(out)

    def _to_string(self, genome: Genome) -> str:
        return ",".join(f"{self.values[g]:g}" for g in genome)

    def _from_string(self, text: str) -> Genome:
        try:
            values = [float(tok) for tok in text.split(",")]
        except ValueError:
            raise InvalidInputError(
                f"{self.name} policy {text!r} must be comma-separated values from "
                + ", ".join(f"{v:g}" for v in self.values)
            ) from None
        out = []
        for v in values:
            hits = [i for i, c in enumerate(self.values) if math.isclose(c, v, abs_tol=1e-9)]
            if not hits:
                raise InvalidInputError(
                    f"{self.name} policy {text!r}: {v:g} is not one of "
                    + ", ".join(f"{c:g}" for c in self.values)
                )
            out.append(hits[0])
        return tuple(out)

    def _supernet(self, num_classes: int):  # type: ignore[no-untyped-def]
        raise InvalidInputError(
            f"a {self.name} space has no weight-sharing supernet: "
            "its genomes are policies applied to one model"
        )

    @abstractmethod
    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        """The model with the policy applied (a copy)."""


class PrunePolicySpace(LayerPolicySpace):
    """Per-group structured pruning ratios (AMC, He et al., ECCV 2018): one gene per prunable group.

    Args:
        model: the model to prune (kept; ``build`` prunes copies).
        input_shape: tracing input, batch included.
        groups: the prunable groups, named by their first layer (see :func:`check_prunable`).
        ratios: the choices (default 0, 0.1, ..., 0.8).
        criterion: channel importance criterion (``l1``, ``l2``, ``bn``, ``random``; ``taylor``
            needs ``batches``).
        ignored: layers never pruned (the output layer and the groups :func:`check_prunable` skips).
        seed: seeds the ``random`` criterion.
        batches: labelled batches for the ``taylor`` criterion.
        center, guide: see :class:`LayerPolicySpace` (the guide comes from the sensitivity prior:
            -1 for the most sensitive group, which guided samples prune less).
        round_to: keep channel counts multiples of this (None: any count).

    A ratio that would leave a small group without channels is not applied (torch-pruning keeps the
    group whole, and ``round_to`` rounds the kept count down); costs are always measured on the
    pruned copy, so they stay exact.
    """

    name = "prune_policy"

    def __init__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        groups: Sequence[str],
        ratios: Sequence[float] = tuple(round(0.1 * i, 1) for i in range(9)),
        *,
        criterion: str = "l1",
        ignored: Sequence[str] = (),
        seed: int = 0,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
        center: float | None = None,
        guide: Sequence[float] | None = None,
        round_to: int | None = None,
    ) -> None:
        if any(not 0.0 <= r < 1.0 for r in ratios):
            raise InvalidInputError(f"pruning ratios {tuple(ratios)!r} must lie in [0, 1)")
        super().__init__(groups, ratios, center=center, guide=guide)
        self.model = model
        self.input_shape = tuple(int(d) for d in input_shape)
        self.criterion = criterion
        self.ignored = tuple(ignored)
        self.seed = seed
        self.batches = tuple(batches)
        self.round_to = round_to

    def prune(self, ratios: Mapping[str, float]) -> nn.Module:
        """A copy of the model with each group pruned by its ratio (any ratio in [0, 1), not only the choices)."""
        from slimforge.compress.prune import apply_prune_policy

        model = copy.deepcopy(self.model)
        apply_prune_policy(
            model,
            self.input_shape,
            ratios,
            criterion=self.criterion,
            seed=self.seed,
            batches=self.batches,
            ignored=self.ignored,
            round_to=self.round_to,
        )
        return model

    def guided(self, center: float | None, guide: Sequence[float] | None) -> PrunePolicySpace:
        """The same space with guided samples drawn around ``center``, shifted per group by ``guide``."""
        return PrunePolicySpace(
            self.model,
            self.input_shape,
            self.layers,
            self.values,
            criterion=self.criterion,
            ignored=self.ignored,
            seed=self.seed,
            batches=self.batches,
            center=center,
            guide=guide,
            round_to=self.round_to,
        )

    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        return self.prune(self.policy(genome))

    def __repr__(self) -> str:
        return (
            f"PrunePolicySpace({len(self.layers)} groups, ratios={self.values}, criterion={self.criterion!r})"
        )


class BitPolicySpace(LayerPolicySpace):
    """Per-layer weight bit-widths (HAQ, Wang et al., CVPR 2019): one gene per quantizable layer.

    Args:
        model: the float model (kept; ``build`` quantizes copies).
        layers: quantizable layer paths (conv / linear).
        bits: the bit-width choices (default 2, 3, 4, 5, 6, 8).
        quantizer: a name from :data:`BIT_QUANTIZERS` (``linear`` or ``kmeans``).
        center, guide: see :class:`LayerPolicySpace` (the guide comes from the sensitivity analysis).
    """

    name = "bit_policy"

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        bits: Sequence[int] = (2, 3, 4, 5, 6, 8),
        *,
        quantizer: str = "linear",
        center: float | None = None,
        guide: Sequence[float] | None = None,
    ) -> None:
        if any(isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 8 for b in bits):
            raise InvalidInputError(f"bit-widths {tuple(bits)!r} must be integers from 1 to 8")
        super().__init__(layers, bits, center=center, guide=guide)
        self.model = model
        self.quantizer = quantizer

    def bits(self, genome: Sequence[int]) -> dict[str, int]:
        """Layer path -> bit-width."""
        return {k: int(v) for k, v in self.policy(genome).items()}

    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        from slimforge.compress.quantize import quantize_weights

        model = copy.deepcopy(self.model)
        quantize_weights(model, self.bits(genome), quantizer=self.quantizer)
        return model

    def __repr__(self) -> str:
        return f"BitPolicySpace({len(self.layers)} layers, bits={self.values}, quantizer={self.quantizer!r})"
