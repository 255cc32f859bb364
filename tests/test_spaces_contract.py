"""The search-space contract, run over every registered space (DESIGN.md "Search-space contract")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.spaces import SPACES, SearchSpace, get_space

NAMES = SPACES.list()


@pytest.fixture(scope="module", params=NAMES)
def space(request) -> SearchSpace:
    return get_space(request.param)


def _samples(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _valid(space: SearchSpace, genome) -> bool:
    return (
        isinstance(genome, tuple)
        and len(genome) == len(space.num_choices)
        and all(type(g) is int and 0 <= g < n for g, n in zip(genome, space.num_choices))
    )


def test_registry_builds_each_space_by_name():
    assert "nb201" in NAMES
    for name in NAMES:
        assert get_space(name).name == name
    with pytest.raises(UnknownNameError, match="nb201"):
        get_space("nb2O1")


def test_samples_are_valid_and_cover_every_choice(space):
    samples = _samples(space, 300)
    assert all(_valid(space, g) for g in samples)
    for i, n in enumerate(space.num_choices):
        assert {g[i] for g in samples} == set(range(n))


def test_sampling_is_determined_by_the_seed(space):
    assert _samples(space, 20, seed=3) == _samples(space, 20, seed=3)
    assert _samples(space, 20, seed=3) != _samples(space, 20, seed=4)


def test_mutation_stays_valid_and_respects_its_probability(space):
    rng = np.random.default_rng(1)
    for g in _samples(space, 50):
        assert space.mutate(g, rng, prob=0.0) == g
        every = space.mutate(g, rng, prob=1.0)
        assert _valid(space, every)
        assert all(a != b for a, b, n in zip(g, every, space.num_choices) if n > 1)
        assert _valid(space, space.mutate(g, rng, prob=0.3))
    with pytest.raises(InvalidInputError, match="probability"):
        space.mutate(g, rng, prob=1.5)


def test_crossover_takes_every_gene_from_a_parent(space):
    rng = np.random.default_rng(2)
    samples = _samples(space, 40)
    for a, b in zip(samples[::2], samples[1::2]):
        child = space.crossover(a, b, rng)
        assert _valid(space, child)
        assert all(c in (x, y) for c, x, y in zip(child, a, b))


def test_canonical_is_idempotent_and_valid(space):
    for g in _samples(space, 300):
        c = space.canonical(g)
        assert _valid(space, c)
        assert space.canonical(c) == c


def test_neighbours_differ_in_exactly_one_gene(space):
    g = _samples(space, 1)[0]
    neighbours = space.neighbours(g)
    assert len(neighbours) == sum(n - 1 for n in space.num_choices)
    assert all(sum(a != b for a, b in zip(g, n)) == 1 for n in neighbours)


def test_string_round_trip(space):
    for g in _samples(space, 100):
        text = space.to_string(g)
        assert isinstance(text, str)
        assert space.from_string(text) == g


def test_validate_rejects_wrong_length_and_range(space):
    good = _samples(space, 1)[0]
    with pytest.raises(InvalidInputError, match="genes"):
        space.validate(good + (0,))
    with pytest.raises(InvalidInputError, match="gene 0"):
        space.validate((space.num_choices[0],) + good[1:])
    with pytest.raises(InvalidInputError, match="gene 0"):
        space.validate((-1,) + good[1:])
    assert space.validate(np.array(good)) == good


def test_build_runs_a_cifar_sized_batch(space):
    torch.manual_seed(0)
    for g in _samples(space, 2, seed=5):
        model = space.build(g, num_classes=7).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 32, 32))
        assert out.shape == (1, 7)
        assert torch.isfinite(out).all()
