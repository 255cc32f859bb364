"""The search-space contract (DESIGN.md, "Search-space contract") as a pytest base class.

A user's own space is checked by one subclass supplying the ``space`` fixture::

    from slimforge.testing.spaces import SpaceContract

    class TestTinySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return TinySpace()

The contract: samples are valid, cover every choice and follow the seed; mutation respects its
probability; crossover takes each gene from a parent; ``canonical`` is idempotent; neighbours
differ in one gene; the string form round-trips; ``validate`` refuses bad genomes with a one-line
error; ``build`` makes a network that maps a 32x32 batch to ``num_classes`` finite logits.
Override ``input_shape`` for a space whose networks take other inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import SearchSpace

__all__ = ["SpaceContract", "sample_genomes", "valid_genome"]


def sample_genomes(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``n`` genomes drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def valid_genome(space: SearchSpace, genome: object) -> bool:
    """Whether ``genome`` is a tuple of in-range Python ints, one per gene."""
    return (
        isinstance(genome, tuple)
        and len(genome) == len(space.num_choices)
        and all(type(g) is int and 0 <= g < n for g, n in zip(genome, space.num_choices))
    )


class SpaceContract:
    """Subclass and supply a ``space`` fixture; every test here must pass for a conforming space."""

    #: the input the built networks are checked on (batch 1).
    input_shape: tuple[int, ...] = (1, 3, 32, 32)

    @pytest.fixture
    def space(self) -> SearchSpace:
        raise NotImplementedError("supply a `space` fixture returning your SearchSpace")

    def test_samples_are_valid_and_cover_every_choice(self, space: SearchSpace) -> None:
        samples = sample_genomes(space, 300)
        assert all(valid_genome(space, g) for g in samples)
        for i, n in enumerate(space.num_choices):
            assert {g[i] for g in samples} == set(range(n)), f"gene {i} never takes some of its {n} choices"

    def test_sampling_is_determined_by_the_seed(self, space: SearchSpace) -> None:
        assert sample_genomes(space, 20, seed=3) == sample_genomes(space, 20, seed=3)
        if space.size > 20:
            assert sample_genomes(space, 20, seed=3) != sample_genomes(space, 20, seed=4)

    def test_mutation_stays_valid_and_respects_its_probability(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(1)
        g = sample_genomes(space, 1)[0]
        for g in sample_genomes(space, 50):
            assert space.mutate(g, rng, prob=0.0) == g
            every = space.mutate(g, rng, prob=1.0)
            assert valid_genome(space, every)
            assert all(a != b for a, b, n in zip(g, every, space.num_choices) if n > 1)
            assert valid_genome(space, space.mutate(g, rng, prob=0.3))
        with pytest.raises(InvalidInputError, match="probability"):
            space.mutate(g, rng, prob=1.5)

    def test_crossover_takes_every_gene_from_a_parent(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(2)
        samples = sample_genomes(space, 40)
        for a, b in zip(samples[::2], samples[1::2]):
            child = space.crossover(a, b, rng)
            assert valid_genome(space, child)
            assert all(c in (x, y) for c, x, y in zip(child, a, b))

    def test_canonical_is_idempotent_and_valid(self, space: SearchSpace) -> None:
        for g in sample_genomes(space, 300):
            c = space.canonical(g)
            assert valid_genome(space, c)
            assert space.canonical(c) == c

    def test_neighbours_differ_in_exactly_one_gene(self, space: SearchSpace) -> None:
        g = sample_genomes(space, 1)[0]
        neighbours = space.neighbours(g)
        assert len(neighbours) == sum(n - 1 for n in space.num_choices)
        assert all(sum(a != b for a, b in zip(g, n)) == 1 for n in neighbours)

    def test_string_round_trip(self, space: SearchSpace) -> None:
        for g in sample_genomes(space, 100):
            text = space.to_string(g)
            assert isinstance(text, str)
            assert space.from_string(text) == g

    def test_validate_rejects_wrong_length_and_range(self, space: SearchSpace) -> None:
        good = sample_genomes(space, 1)[0]
        with pytest.raises(InvalidInputError, match="genes"):
            space.validate(good + (0,))
        with pytest.raises(InvalidInputError, match="gene 0"):
            space.validate((space.num_choices[0],) + good[1:])
        with pytest.raises(InvalidInputError, match="gene 0"):
            space.validate((-1,) + good[1:])
        assert space.validate(np.array(good)) == good

    def test_build_runs_a_batch(self, space: SearchSpace) -> None:
        torch.manual_seed(0)
        for g in sample_genomes(space, 2, seed=5):
            model = space.build(g, num_classes=7).eval()
            with torch.no_grad():
                out = model(torch.randn(*self.input_shape))
            assert out.shape == (self.input_shape[0], 7)
            assert torch.isfinite(out).all()
