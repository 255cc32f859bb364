"""What the layer-wise spaces (``mbv2``, ``shufflenet``) share: slots, network, supernet, genome rules.

A layer-wise space is a fixed macro skeleton (stem, stages of searchable layers, head) where each
searchable layer picks one block from a short list, or the identity where the layer keeps the
tensor's shape (ProxylessNAS, Cai et al. 2019; SPOS, Guo et al. 2020). The genome has one gene per
searchable layer; choice ``i`` means the same block in every gene, and the identity is always the
last choice, so a gene that may not be the identity simply has one choice fewer.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces._base import Genome, SearchSpace
from slimforge.spaces._supernet import Supernet
from slimforge.zoo import init_conv_bn_linear

__all__ = [
    "CIFAR_MAX_RESOLUTION",
    "IDENTITY_TOKEN",
    "SHARING",
    "LayerSlot",
    "LayerwiseFrame",
    "LayerwiseNet",
    "LayerwiseSpace",
    "LayerwiseSupernet",
    "check_depths",
    "check_dropout",
    "check_resolution",
    "check_width",
]

IDENTITY_TOKEN = "id"
#: the supernet weight-sharing schemes of the layer-wise spaces.
SHARING = ("separate", "elastic")
#: At or below this input side a layer-wise space applies its CIFAR adaptation (see each space).
CIFAR_MAX_RESOLUTION = 64


@dataclass(frozen=True)
class LayerSlot:
    """One searchable layer of the skeleton: its stage, input/output channels and stride."""

    stage: int
    in_chs: int
    out_chs: int
    stride: int

    @property
    def keeps_shape(self) -> bool:
        """Whether the layer maps a tensor to one of the same shape, so it may be the identity."""
        return self.stride == 1 and self.in_chs == self.out_chs


class LayerwiseNet(nn.Module):
    """stem → one block (or identity) per searchable layer → head → pool → dropout → classifier."""

    def __init__(
        self,
        stem: nn.Module,
        layers: list[nn.Module],
        head: nn.Module,
        num_features: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = stem
        # Identity layers stay in the list as nn.Identity so layer i is always the genome's gene i.
        self.layers = nn.Sequential(*layers)
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))


class LayerwiseFrame(Supernet):
    """What every layer-wise supernet shares: the space's stem, head and classifier around the
    searchable layers a subclass sets between ``self.stem`` and :meth:`_set_head`."""

    space: LayerwiseSpace

    def _set_head(self, space: LayerwiseSpace, num_classes: int) -> None:
        """The head, pooling, dropout and classifier; then every weight initialised as in built networks."""
        self.head = space._make_head()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.num_features, num_classes)
        init_conv_bn_linear(self, zero_init_last=False)

    def drop_choices(self) -> list[int | None]:
        """The identity where a layer may be the identity."""
        identity = self.space.identity_choice
        return [identity if n > identity else None for n in self.space.num_choices]

    @abstractmethod
    def _run_choice(self, layer: int, choice: int, x: torch.Tensor) -> torch.Tensor:
        """Searchable layer ``layer`` with block choice ``choice`` (never the identity) applied to ``x``."""

    def _forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        identity = self.space.identity_choice
        x = self.stem(x)
        for i, choice in enumerate(genome):
            if choice != identity:
                x = self._run_choice(i, choice, x)
        return self._classify(x)

    def forward_gated(
        self, x: torch.Tensor, gates: torch.Tensor, active: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """Logits where layer ``i`` outputs ``sum_{c in active[i]} gates[i, c] * choice_c(h)``.

        The relaxed forward of the hardware-aware trainers: with one active choice and a
        straight-through one-hot gate it is a sampled path (FBNet with hard Gumbel samples); with two
        active choices and binary gates it is ProxylessNAS's two-path forward, whose gradient in
        ``gates`` is ``<dL/dout, choice_c(h)>`` for each active choice.

        Args:
            x: images (B, 3, H, W).
            gates: (layers, max choices) gate values.
            active: per layer, the choices that run (valid choice indices of that gene).
        """
        if len(active) != len(self.space.slots) or gates.ndim != 2 or gates.shape[0] != len(self.space.slots):
            raise InvalidInputError(
                f"forward_gated needs gates of shape ({len(self.space.slots)}, choices) and one active list per layer"
            )
        identity = self.space.identity_choice
        x = self.stem(x)
        for i, run in enumerate(active):
            if not run or any(not 0 <= c < self.space.num_choices[i] for c in run):
                raise InvalidInputError(f"layer {i}: active choices {list(run)!r} are not valid choices")
            x = sum(gates[i, c] * (x if c == identity else self._run_choice(i, c, x)) for c in run)
        return self._classify(x)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last searchable layer's output ``x``: head, pooling, dropout, classifier."""
        x = self.head(x)
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))

    def _load_fixed_into(self, net: nn.Module) -> None:
        """Copy the stem, head and classifier into the built network ``net``."""
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())


class LayerwiseSupernet(LayerwiseFrame):
    """SPOS-style weight sharing: one module per block choice per layer; the identity has no weights.

    The stem, head and classifier are shared by every path. ``choices[i][c]`` is built exactly as
    layer ``i`` of ``space.build(genome)`` with ``genome[i] == c``, so extraction copies state dicts.
    """

    space: LayerwiseSpace

    def __init__(self, space: LayerwiseSpace, num_classes: int) -> None:
        super().__init__(space, num_classes)
        self.stem = space._make_stem()
        self.choices = nn.ModuleList(
            nn.ModuleList(space._make_block(c, slot) for c in range(len(space.block_tokens)))
            for slot in space.slots
        )
        self._set_head(space, num_classes)

    def weighted_choices(self) -> list[tuple[int, ...]]:
        """Every block choice; the identity (no weights) is left out."""
        return [tuple(range(len(self.space.block_tokens))) for _ in self.space.num_choices]

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The batch-norm layers of every block choice."""
        return [m for m in self.choices.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _run_choice(self, layer: int, choice: int, x: torch.Tensor) -> torch.Tensor:
        return self.choices[layer][choice](x)

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        self._load_fixed_into(net)
        identity = self.space.identity_choice
        for layer, blocks, choice in zip(net.layers, self.choices, genome):
            if choice != identity:
                layer.load_state_dict(blocks[choice].state_dict())


class LayerwiseSpace(SearchSpace):
    """Base of the layer-wise spaces: genome rules, strings, build and supernet from a few hooks.

    Subclasses set :attr:`block_tokens` (one short name per block choice), :attr:`slots`,
    :attr:`num_features`, :attr:`dropout` and :attr:`allow_identity` in their constructor and
    implement :meth:`_make_stem`, :meth:`_make_block` and :meth:`_make_head`.

    Canonical form: inside a run of consecutive shape-keeping layers, identity layers are moved
    behind the blocks (which keep their order). Removing an identity does not change the network,
    and every layer of such a run has the same shape, so ``k3e6-id-k5e3`` and ``k3e6-k5e3-id`` in
    one stage are the same network (the same blocks, applied in the same order). Nothing else is
    merged: different block sequences are different networks.
    """

    block_tokens: tuple[str, ...]
    slots: tuple[LayerSlot, ...]
    num_features: int
    dropout: float
    allow_identity: bool
    #: how the supernet shares weights; a space with an elastic supernet sets it with :meth:`_set_sharing`.
    sharing: str = "separate"

    def _set_options(
        self,
        width: object,
        resolution: object,
        min_resolution: int,
        stage_depths: object,
        num_stages: int,
        identity: object,
        dropout: object,
    ) -> None:
        """Check and set the options every layer-wise space takes. At an input side of
        ``CIFAR_MAX_RESOLUTION`` or less, ``cifar`` is set: the space applies its CIFAR adaptation."""
        self.width = check_width(self.name, width)
        self.resolution = check_resolution(self.name, resolution, min_resolution)
        self.stage_depths = check_depths(self.name, stage_depths, num_stages)
        self.allow_identity = bool(identity)
        self.dropout = check_dropout(self.name, dropout)
        self.cifar = self.resolution <= CIFAR_MAX_RESOLUTION

    def _set_sharing(self, sharing: object) -> None:
        """Check and set :attr:`sharing`: ``"elastic"`` (one entangled block per layer, built by
        :meth:`_elastic_supernet`) or ``"separate"`` (one module per block choice per layer)."""
        if sharing not in SHARING:
            raise InvalidInputError(
                f"{self.name}: sharing={sharing!r} is invalid; use one of {', '.join(SHARING)}"
            )
        self.sharing = str(sharing)

    def supernet_recipe(self) -> dict[str, Any]:
        """SPOS with affine choice BN: on the elastic mbv2 supernet it ranks at τ +0.64 against two
        standalone trainings where the few-shot, affine-free default ranks at +0.09 (BENCHMARKS issue 16)."""
        return {"method": "spos", "bn_affine": True}

    def network_key(self) -> str:
        """The ``repr`` without ``sharing``, which changes the supernet only (built networks are the same)."""
        return repr(self).replace(f", sharing={self.sharing!r}", "")

    def matches_network_key(self, key: str) -> bool:
        """Whether ``key`` names this space's networks; a ``repr`` stored by an older table may name a sharing."""
        return re.sub(r", sharing='\w+'\)$", ")", key) == self.network_key()

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """The batch-1 input shape the space is meant for, ``(1, 3, resolution, resolution)``."""
        return (1, 3, self.resolution, self.resolution)

    def _describe(self, class_name: str, extra: str = "") -> str:
        """The ``repr`` of the space: its class and options (``extra`` is appended inside the brackets)."""
        return (
            f"{class_name}(width={self.width}, resolution={self.resolution}, stage_depths={self.stage_depths}, "
            f"identity={self.allow_identity}, dropout={self.dropout}{extra})"
        )

    @abstractmethod
    def _make_stem(self) -> nn.Module:
        """The fixed layers before the first searchable layer."""

    @abstractmethod
    def _make_block(self, choice: int, slot: LayerSlot) -> nn.Module:
        """Block ``choice`` (an index into :attr:`block_tokens`) for the layer ``slot``."""

    @abstractmethod
    def _make_head(self) -> nn.Module:
        """The fixed layers between the last searchable layer and the global pooling."""

    # ------------------------------------------------------------------ genome rules
    @property
    def identity_choice(self) -> int:
        """The choice index of the identity (one past the last block), in genes that allow it."""
        return len(self.block_tokens)

    @property
    def num_layers(self) -> int:
        """Number of searchable layers (= genes)."""
        return len(self.slots)

    @property
    def num_choices(self) -> list[int]:
        n = len(self.block_tokens)
        return [n + 1 if self._identity_allowed(slot) else n for slot in self.slots]

    def _identity_allowed(self, slot: LayerSlot) -> bool:
        return self.allow_identity and slot.keeps_shape

    def _canonical(self, genome: Genome) -> Genome:
        out = list(genome)
        identity = self.identity_choice
        start = 0
        while start < len(out):
            if not self._identity_allowed(self.slots[start]):
                start += 1
                continue
            end = start
            while end < len(out) and self._identity_allowed(self.slots[end]):
                end += 1
            run = out[start:end]
            blocks = [c for c in run if c != identity]
            out[start:end] = blocks + [identity] * (len(run) - len(blocks))
            start = end
        return tuple(out)

    # ------------------------------------------------------------------ strings
    def _token(self, choice: int) -> str:
        return IDENTITY_TOKEN if choice == self.identity_choice else self.block_tokens[choice]

    def _to_string(self, genome: Genome) -> str:
        return "-".join(self._token(c) for c in genome)

    def _from_string(self, text: str) -> Genome:
        tokens = [t.strip() for t in text.strip().split("-")]
        known = ", ".join((*self.block_tokens, IDENTITY_TOKEN) if self.allow_identity else self.block_tokens)
        if len(tokens) != self.num_layers:
            raise InvalidInputError(
                f"{self.name} architecture string {text!r} has {len(tokens)} '-'-separated layers; this space "
                f"has {self.num_layers} (one of {known} each, e.g. {self._to_string(self._example())!r})"
            )
        genome = []
        for i, (token, slot) in enumerate(zip(tokens, self.slots)):
            if token == IDENTITY_TOKEN:
                if not self._identity_allowed(slot):
                    why = (
                        "this space has no identity choice (allow_identity=False)"
                        if not self.allow_identity
                        else f"it changes the shape ({slot.in_chs}->{slot.out_chs} channels, stride {slot.stride})"
                    )
                    raise InvalidInputError(
                        f"{self.name} architecture string {text!r}: layer {i} cannot be {IDENTITY_TOKEN!r}: {why}; "
                        f"use one of {', '.join(self.block_tokens)}"
                    )
                genome.append(self.identity_choice)
            elif token in self.block_tokens:
                genome.append(self.block_tokens.index(token))
            else:
                raise InvalidInputError(
                    f"{self.name} architecture string {text!r}: layer {i} is {token!r}; known layers: {known}"
                )
        return tuple(genome)

    def _example(self) -> Genome:
        return tuple(0 for _ in self.slots)

    # ------------------------------------------------------------------ networks
    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        layers = [
            nn.Identity() if choice == self.identity_choice else self._make_block(choice, slot)
            for choice, slot in zip(genome, self.slots)
        ]
        net = LayerwiseNet(
            self._make_stem(), layers, self._make_head(), self.num_features, num_classes, self.dropout
        )
        init_conv_bn_linear(net, zero_init_last=False)
        return net

    def _supernet(self, num_classes: int) -> Supernet:
        """The weight-sharing supernet with a ``num_classes`` head: elastic or separate, as :attr:`sharing` says."""
        if self.sharing == "elastic":
            return self._elastic_supernet(num_classes)
        return LayerwiseSupernet(self, num_classes)

    def _elastic_supernet(self, num_classes: int) -> Supernet:
        """The elastic supernet; a space that offers ``sharing="elastic"`` overrides this."""
        raise InvalidInputError(f"{self.name}: has no elastic supernet; use sharing='separate'")


def check_width(space: str, width: object) -> float:
    """``width`` as a float, or InvalidInputError naming the value."""
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or not math.isfinite(width)
        or width <= 0
    ):
        raise InvalidInputError(
            f"{space}: width={width!r} is invalid; pass a positive multiplier such as 0.35, 0.5 or 1.0"
        )
    return float(width)


def check_resolution(space: str, resolution: object, minimum: int) -> int:
    """``resolution`` as an int of at least ``minimum`` (the smallest total stride of the space's skeletons)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < minimum:
        raise InvalidInputError(
            f"{space}: resolution={resolution!r} is invalid; pass the input side in pixels, at least {minimum} "
            f"so the last feature map is at least 1x1, e.g. 32 for CIFAR or 224 for ImageNet"
        )
    return resolution


def check_depths(space: str, depths: object, num_stages: int) -> tuple[int, ...]:
    """``depths`` as a tuple of ``num_stages`` positive ints."""
    try:
        values = tuple(depths)  # type: ignore[arg-type]
    except TypeError:
        values = ()
    if len(values) != num_stages or any(
        isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in values
    ):
        raise InvalidInputError(
            f"{space}: stage_depths={depths!r} is invalid; pass {num_stages} positive ints (layers per stage)"
        )
    return values


def check_dropout(space: str, dropout: object) -> float:
    """``dropout`` as a float in [0, 1)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidInputError(f"{space}: dropout={dropout!r} is invalid; pass a probability in [0, 1)")
    return float(dropout)
