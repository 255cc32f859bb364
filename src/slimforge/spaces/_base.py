"""The search-space contract every space implements (DESIGN.md, "Search-space contract").

A genome is a fixed-length tuple of choice indices, one per gene. Public methods validate their
input and then call a protected hook, so a subclass only overrides what differs from the
defaults (uniform sampling, per-gene mutation, uniform crossover, identity canonical form,
comma-separated strings).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from slimforge.errors import InvalidInputError

if TYPE_CHECKING:
    from slimforge.spaces._supernet import Supernet

__all__ = ["Genome", "SearchSpace"]

Genome = tuple[int, ...]


class SearchSpace(ABC):
    """A fixed-length genome of choice indices, its operators and the network it builds.

    The contract (checked by :class:`slimforge.testing.spaces.SpaceContract`): subclasses provide
    :attr:`num_choices` and :meth:`_build`, and that is enough for every search, cost model and
    proxy. Every other hook has a default that works for any space: :meth:`_canonical` (identity;
    override it when different genomes build the same network), :meth:`_to_string` /
    :meth:`_from_string` (comma-separated choice indices), sampling, mutation and crossover, and
    :meth:`_supernet` (none: override it to search with a weight-sharing supernet).
    """

    #: registry name of the space ("nb201", ...).
    name: str = ""

    @property
    @abstractmethod
    def num_choices(self) -> list[int]:
        """Number of choices of each gene, one entry per gene."""

    @abstractmethod
    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        """Build the standalone network of a validated genome."""

    # ----------------------------------------------------------------- public API
    @property
    def num_genes(self) -> int:
        """Genome length."""
        return len(self.num_choices)

    @property
    def size(self) -> int:
        """Number of genomes (not of distinct networks: see :meth:`canonical`)."""
        return math.prod(self.num_choices)

    def validate(self, genome: Sequence[int]) -> Genome:
        """Return ``genome`` as a tuple of ints; a wrong length or value raises InvalidInputError."""
        choices = self._choice_counts()
        # Fast path: the engine passes tuples of plain ints thousands of times per search.
        if (
            type(genome) is tuple
            and len(genome) == len(choices)
            and all(type(v) is int and 0 <= v < n for v, n in zip(genome, choices))
        ):
            return genome
        try:
            values = tuple(genome)
        except TypeError:
            raise InvalidInputError(
                f"{self.name} genome must be a sequence of {len(choices)} ints, got {genome!r}"
            ) from None
        if len(values) != len(choices):
            raise InvalidInputError(
                f"{self.name} genome {values!r} has {len(values)} genes; this space has {len(choices)}"
            )
        out = []
        for i, (value, n) in enumerate(zip(values, choices)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise InvalidInputError(
                    f"{self.name} genome {values!r}: gene {i} is {value!r}, expected an int in [0, {n - 1}]"
                )
            if not 0 <= value < n:
                raise InvalidInputError(
                    f"{self.name} genome {values!r}: gene {i} is {value}, expected an int in [0, {n - 1}]"
                )
            out.append(int(value))
        return tuple(out)

    def _choice_counts(self) -> tuple[int, ...]:
        # num_choices is fixed for an instance; cache it (subclasses may compute it).
        counts = self.__dict__.get("_choice_counts_cache")
        if counts is None:
            counts = self.__dict__["_choice_counts_cache"] = tuple(self.num_choices)
        return counts

    def sample(self, rng: np.random.Generator) -> Genome:
        """Draw a genome (uniform over genes unless the space says otherwise)."""
        return self.validate(self._sample(rng))

    def mutate(self, genome: Sequence[int], rng: np.random.Generator, prob: float = 0.1) -> Genome:
        """Return a copy of ``genome`` where each gene is, with probability ``prob``, set to another choice."""
        if not 0.0 <= prob <= 1.0:
            raise InvalidInputError(f"mutation probability {prob!r} must lie in [0, 1]")
        return self.validate(self._mutate(self.validate(genome), rng, prob))

    def crossover(self, a: Sequence[int], b: Sequence[int], rng: np.random.Generator) -> Genome:
        """Return a child whose every gene comes from ``a`` or ``b``."""
        return self.validate(self._crossover(self.validate(a), self.validate(b), rng))

    def canonical(self, genome: Sequence[int]) -> Genome:
        """Map every genome of the same network to one genome (idempotent)."""
        return self._canonical(self.validate(genome))

    def neighbours(self, genome: Sequence[int]) -> list[Genome]:
        """Every genome that differs from ``genome`` in exactly one gene, gene by gene."""
        genome = self.validate(genome)
        out = []
        for i, n in enumerate(self.num_choices):
            for value in range(n):
                if value != genome[i]:
                    out.append(genome[:i] + (value,) + genome[i + 1 :])
        return out

    def to_string(self, genome: Sequence[int]) -> str:
        """The genome as the space's standard string."""
        return self._to_string(self.validate(genome))

    def from_string(self, text: str) -> Genome:
        """Parse the space's standard string; a malformed string raises InvalidInputError."""
        if not isinstance(text, str):
            raise InvalidInputError(f"{self.name} architecture string must be a str, got {text!r}")
        return self.validate(self._from_string(text))

    def build(self, genome: Sequence[int], num_classes: int = 10) -> nn.Module:
        """Build the standalone network of ``genome`` with a ``num_classes``-way head."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidInputError(f"num_classes must be a positive int, got {num_classes!r}")
        return self._build(self.validate(genome), num_classes)

    def supernet(self, num_classes: int = 10) -> Supernet:
        """The weight-sharing supernet of this space with a ``num_classes``-way head."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidInputError(f"num_classes must be a positive int, got {num_classes!r}")
        return self._supernet(num_classes)

    def _supernet(self, num_classes: int) -> Supernet:
        """Build the weight-sharing supernet (see :class:`slimforge.spaces.Supernet`); optional.

        A space without one still searches with any other accuracy source (a table, zero-cost
        proxies, a predictor, or networks trained standalone).
        """
        raise InvalidInputError(
            f"search space {self.name or type(self).__name__} has no weight-sharing supernet; implement "
            "_supernet(num_classes), or use an accuracy source that needs none (table:, proxy:, predictor:)"
        )

    # ---------------------------------------------------------------- default hooks
    def _sample(self, rng: np.random.Generator) -> Genome:
        return tuple(int(rng.integers(n)) for n in self.num_choices)

    def _mutate(self, genome: Genome, rng: np.random.Generator, prob: float) -> Genome:
        out = list(genome)
        for i, n in enumerate(self.num_choices):
            if n > 1 and rng.random() < prob:
                # Draw among the other choices so that a mutated gene always changes.
                out[i] = (out[i] + 1 + int(rng.integers(n - 1))) % n
        return tuple(out)

    def _crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        take_a = rng.random(len(a)) < 0.5
        return tuple(x if t else y for x, y, t in zip(a, b, take_a))

    def _canonical(self, genome: Genome) -> Genome:
        return genome

    def _to_string(self, genome: Genome) -> str:
        return ",".join(str(g) for g in genome)

    def _from_string(self, text: str) -> Genome:
        try:
            return tuple(int(tok) for tok in text.split(","))
        except ValueError:
            raise InvalidInputError(
                f"{self.name} architecture string {text!r} must be comma-separated ints"
            ) from None

    def supernet_recipe(self) -> dict[str, Any]:
        """TrainConfig settings that make this space's supernet rank best, where a command names none
        (``supernet train``); empty: TrainConfig's defaults (few-shot, affine-free choice BN, chosen on
        NAS-Bench-201)."""
        return {}

    def network_key(self) -> str:
        """What identifies the networks the space builds: tables of per-network costs (lookup tables)
        are keyed by it. The ``repr`` less options that change only the supernet, so a table stays valid
        for either supernet of the same networks."""
        return repr(self)

    def matches_network_key(self, key: str) -> bool:
        """Whether a stored key (a :meth:`network_key` or, from older tables, a ``repr``) names this space's networks."""
        return key in (self.network_key(), repr(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
