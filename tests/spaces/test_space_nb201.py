"""The NAS-Bench-201 space: strings, canonical form, the built network."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import NB201Space, get_space
from slimforge.spaces.nb201 import NB201_OPS

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nb201"
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NONE, SKIP, C1, C3, POOL = range(5)


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return get_space("nb201")


@pytest.fixture(scope="module")
def all_genomes() -> list[tuple[int, ...]]:
    return list(itertools.product(range(5), repeat=6))


def test_example_string_round_trips_in_edge_order(space):
    genome = space.from_string(EXAMPLE)
    assert genome == (C3, C3, POOL, SKIP, C3, SKIP)
    assert space.to_string(genome) == EXAMPLE


def test_every_genome_round_trips(space, all_genomes):
    assert len(all_genomes) == space.size == 15625
    assert all(space.from_string(space.to_string(g)) == g for g in all_genomes)


@pytest.mark.parametrize(
    "text, fix",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 '+'-separated nodes"),
        (
            "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "unknown operation",
        ),
        (
            "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "must read",
        ),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "must have 2 edge",
        ),
    ],
)
def test_malformed_strings_say_what_is_wrong(space, text, fix):
    with pytest.raises(InvalidInputError, match=re.escape(fix)):
        space.from_string(text)


def test_canonical_sets_edges_out_of_an_unreachable_node_to_none(space):
    # e01 = none: node 1 holds zeros, so e12 and e13 compute on zeros.
    assert space.canonical((NONE, C3, C3, SKIP, C1, SKIP)) == (NONE, C3, NONE, SKIP, NONE, SKIP)


def test_canonical_sets_edges_into_a_useless_node_to_none(space):
    # e12 = e13 = none: node 1 never reaches the output, so e01 is dead.
    assert space.canonical((C3, C1, NONE, SKIP, NONE, C3)) == (NONE, C1, NONE, SKIP, NONE, C3)


def test_canonical_of_a_disconnected_cell_is_all_none(space):
    assert space.canonical((C3, C3, C3, NONE, NONE, NONE)) == (NONE,) * 6


def test_canonical_swaps_interchangeable_nodes_when_e12_is_none(space):
    a = (C3, SKIP, NONE, POOL, C1, C3)  # (e01, e13) = (3, 2), (e02, e23) = (1, 3)
    b = (SKIP, C3, NONE, POOL, C3, C1)  # the same cell with nodes 1 and 2 swapped
    assert space.canonical(a) == space.canonical(b) == b
    # With e12 present the nodes are not interchangeable.
    assert space.canonical((C3, SKIP, C1, POOL, C1, C3)) == (C3, SKIP, C1, POOL, C1, C3)


def test_canonical_is_idempotent_and_groups_into_distinct_networks(space, all_genomes):
    canon = {g: space.canonical(g) for g in all_genomes}
    assert all(space.canonical(c) == c for c in canon.values())
    # The docstring's figure: 8,765 distinct networks under the two rules.
    assert len(set(canon.values())) == 8765
    # Without a none edge every node is live and neither rule applies.
    full = [g for g in all_genomes if NONE not in g]
    assert all(canon[g] == g for g in full)


def test_all_conv3x3_network_has_nb201_parameter_count(space):
    model = space.build((C3,) * 6, num_classes=10)
    params = sum(p.numel() for p in model.parameters())
    assert params == pytest.approx(1.53e6, rel=0.01)
    assert params != sum(p.numel() for p in space.build((C3,) * 6, num_classes=100).parameters())


def test_built_network_runs_and_has_the_benchmark_skeleton(space):
    model = space.build(space.from_string(EXAMPLE), num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)
    assert len(model.cells) == 3 * 5 + 2  # 15 cells and two reduction blocks
    assert model.stem[0].out_channels == 16 and model.classifier.in_features == 64


def test_dead_edges_do_not_change_the_output():
    # e01 = none makes edges 1->2 and 1->3 dead: randomising their conv weights changes nothing
    # (their BN bias would add a constant, which the canonical rule deliberately ignores).
    genome = (NONE, C3, C3, SKIP, C1, C1)
    torch.manual_seed(0)
    model = NB201Space(channels=4, cells_per_stage=2).build(genome).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        for cell in model.cells:
            if hasattr(cell, "edges"):
                for key in ("2_1", "3_1"):
                    cell.edges[key][1].weight.normal_()
        after = model(x)
    assert torch.equal(before, after)


def test_disconnected_cell_outputs_zeros(space):
    model = space.build((NONE,) * 6).eval()
    cell = model.cells[0]
    assert torch.count_nonzero(cell(torch.randn(1, 16, 8, 8))) == 0


@pytest.mark.parametrize(
    "genome, match",
    [
        ((1, 2, 3), "has 3 genes"),
        ((0, 0, 0, 0, 0, 5), "gene 5 is 5"),
        ((0, 0, 0, 0, 0, 1.0), "gene 5 is 1.0"),
    ],
)
def test_validate_rejects_bad_genomes(space, genome, match):
    with pytest.raises(InvalidInputError, match=match):
        space.build(genome)


def test_constructor_checks_its_arguments():
    with pytest.raises(InvalidInputError, match="channels"):
        NB201Space(channels=0)
    small = NB201Space(channels=4, cells_per_stage=1)
    assert small.build((C3,) * 6)(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_every_reference_table_architecture_parses(space):
    path = DATA / "accuracy_cifar10.csv"
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (see /work/shared/data/README.md)")
    import csv

    with path.open() as fh:
        archs = [row["arch"] for row in csv.DictReader(fh)]
    genomes = {space.from_string(a) for a in archs}
    assert len(genomes) == 15625
    assert {space.to_string(g) for g in genomes} == set(archs)


def test_ops_are_the_benchmark_ops():
    assert NB201_OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert np.prod(NB201Space().num_choices) == 15625
