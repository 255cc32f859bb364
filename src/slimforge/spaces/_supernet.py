"""The supernet contract: one module holding every choice's weights of a space.

``forward(x, genome)`` runs exactly the chosen path (the architecture is passed explicitly, never
kept in mutable attributes), and ``extract(genome)`` returns the standalone network of
``space.build(genome)`` with the supernet's weights copied in, so that the two give the same
output in eval mode. The protocol follows Once-for-All's "set, sample, extract" minus its hidden
state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from slimforge.spaces._base import Genome, SearchSpace

__all__ = ["Supernet"]


class Supernet(nn.Module, ABC):
    """Weight-sharing supernet of ``space`` with a ``num_classes``-way head.

    Subclasses implement :meth:`_forward` and :meth:`_load_into` (copy the weights a genome uses
    into a standalone network built by the space).
    """

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__()
        self.space = space
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, genome: Sequence[int]) -> torch.Tensor:  # type: ignore[override]
        """Logits of the sub-network ``genome`` on ``x``."""
        return self._forward(x, self.space.validate(genome))

    def extract(self, genome: Sequence[int]) -> nn.Module:
        """The standalone network of ``genome`` carrying the supernet's (inherited) weights."""
        genome = self.space.validate(genome)
        net = self.space.build(genome, num_classes=self.num_classes)
        self._load_into(net, genome)
        return net.train(self.training)

    def weighted_choices(self) -> list[tuple[int, ...]]:
        """Per gene, the choices whose modules carry weights (a warm-up trains these paths first).

        The default is every choice; supernets with parameter-free choices (skip, pooling, ``none``,
        the identity) leave those out.
        """
        return [tuple(range(n)) for n in self.space.num_choices]

    def few_shot_gene(self) -> int:
        """The gene a few-shot supernet splits on by default (Zhao et al., 2021): the first."""
        return 0

    def drop_choices(self) -> list[int | None]:
        """Per gene, the choice that drops it from the path (path dropout), None where none does."""
        return [None for _ in self.space.num_choices]

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The batch-norm layers inside the searchable choices (not the stem, head or fixed blocks)."""
        return []

    @abstractmethod
    def _forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        """Run the validated ``genome``'s path."""

    @abstractmethod
    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        """Copy the weights ``genome`` uses (conv, BN affine and running statistics) into ``net``."""
