"""The joint architecture + bit-width search (APQ-style) and its sequential baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch import nn

from slimforge.compress import joint_search
from slimforge.compress.auto import JointCosts, JointSpace
from slimforge.errors import InvalidInputError
from slimforge.hardware import count_macs

SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope="module")
def supernet():
    from slimforge.spaces.mbv2 import MBV2Space
    from slimforge.supernet import make_supernet

    space = MBV2Space(width=0.35, resolution=8, stage_depths=(2, 1, 1, 1, 1, 1), sharing="separate")
    return make_supernet(space, 10, 0).eval()


@pytest.mark.slow
def test_joint_space_costs_and_canonical_form(supernet):
    space = JointSpace(supernet.space, supernet=supernet)
    costs = JointCosts.measure(space, supernet, SHAPE)
    rng = np.random.default_rng(1)
    identity = supernet.space.identity_choice
    for _ in range(4):
        g = space.canonical(space.sample(rng))
        assert space.canonical(g) == g and space.from_string(space.to_string(g)) == g
        net = space.build(g, 10)
        assert costs.of(space, g, 8)["macs"] == count_macs(net, SHAPE)
        convs = {n for n, m in net.named_modules() if type(m) in (nn.Conv2d, nn.Linear)}
        assert set(space.bit_policy(g)) == convs
    # An identity layer's bit genes are unused: the canonical form fixes them.
    arch = list(space.split(space.canonical(space.sample(rng)))[0])
    arch[1] = identity  # layer 1 keeps its shape in this space
    a = space.join(tuple(arch), 2)
    b = space.join(tuple(arch), 4)
    genes_a, genes_b = list(a), list(b)
    genes_b[: space.slot_offset[1]] = genes_a[: space.slot_offset[1]]
    genes_b[space.slot_offset[2] :] = genes_a[space.slot_offset[2] :]
    assert space.canonical(tuple(genes_b)) == space.canonical(a)
    c = costs.of(space, space.join(tuple(arch), 4), 8)
    assert c["bitops"] == c["macs"] * 4 * 8 and c["avg_bits"] == 4


@pytest.mark.slow
def test_joint_search_meets_the_budget_and_reports_the_sequential_baselines(supernet, splits, tmp_path):
    result = joint_search(
        supernet,
        splits,
        "bitops=0.4",
        tmp_path / "joint",
        search_budget=6,
        baseline_bits=(4, 8),
        recal_images=16,
    )
    assert result.budget_met and result.rows[0].bitops <= result.budget_bound
    assert result.rows[0].name == "joint"
    assert all(r.within_budget == (r.cost <= result.budget_bound) for r in result.rows)
    assert {r.name for r in result.rows[1:]} <= {"float arch, then 4-bit", "float arch, then 8-bit"}
    # The extracted, quantized network scores what the supernet path scored during the search.
    assert all(math.isclose(r.estimate_accuracy_pct, r.val_accuracy_pct) for r in result.rows)
    assert (tmp_path / "joint" / "joint_search.json").is_file()
    assert type(result).from_json(result.to_json()) == result


@pytest.mark.slow
def test_finetuned_joint_networks_keep_their_trained_batchnorm_statistics(supernet, splits, recalibrations):
    calls = recalibrations
    counts = {}
    for epochs in (0, 1):
        calls.clear()
        result = joint_search(
            supernet,
            splits,
            "bitops=0.4",
            search_budget=3,
            baseline_bits=(8,),
            recal_images=16,
            finetune_epochs=epochs,
        )
        counts[epochs] = len(calls)
    assert counts[0] - counts[1] == 2 * len(result.rows)  # each final row: validation and test


@pytest.mark.slow
def test_joint_search_on_an_elastic_supernet_matches_the_separate_costs(supernet, splits, tmp_path):
    # An elastic supernet shares modules between choices: layer paths and costs come from a
    # separate-weights probe, candidates are quantized after extraction.
    from slimforge.spaces.mbv2 import MBV2Space
    from slimforge.supernet import make_supernet

    space = MBV2Space(width=0.35, resolution=8, stage_depths=(2, 1, 1, 1, 1, 1), sharing="elastic")
    elastic = make_supernet(space, 10, 0).eval()
    joint = JointSpace(space, supernet=elastic)
    assert joint.slot_paths == JointSpace(supernet.space, supernet=supernet).slot_paths
    result = joint_search(
        elastic,
        splits,
        "bitops=0.4",
        tmp_path / "joint",
        search_budget=4,
        baseline_bits=(8,),
        recal_images=16,
    )
    assert result.budget_met and result.rows[0].bitops <= result.budget_bound
    assert all(math.isclose(r.estimate_accuracy_pct, r.val_accuracy_pct) for r in result.rows)


def test_joint_search_refuses_a_non_layerwise_space(splits):
    from slimforge.spaces import get_space
    from slimforge.supernet import make_supernet

    net = make_supernet(get_space("nb201"), 10, 0)
    with pytest.raises(InvalidInputError, match="layer-wise space"):
        joint_search(net, splits, "bitops=0.5")


def test_a_budget_the_smallest_network_misses_names_the_smallest_reachable(supernet, splits):
    from slimforge.compress.auto import BudgetUnreachableError

    with pytest.raises(BudgetUnreachableError, match=r"smallest network.*reachable budget is bitops=0\.\d+$"):
        joint_search(supernet, splits, "bitops=0.0001", search_budget=3)
