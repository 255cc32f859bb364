"""Pareto utilities and indicators against brute force on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.search.indicators import hv_contributions, hypervolume, igd_plus, normalise
from slimforge.search.pareto import (
    constrained_rank,
    crowding_distance,
    non_dominated_fronts,
    pareto_mask,
    survival_order,
)


def _dominates(a, b) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_ranks(F):
    rank = np.full(len(F), -1)
    left = set(range(len(F)))
    r = 0
    while left:
        front = {i for i in left if not any(_dominates(F[j], F[i]) for j in left)}
        for i in front:
            rank[i] = r
        left -= front
        r += 1
    return rank


@pytest.mark.parametrize("m", [2, 3])
def test_non_dominated_sorting_matches_brute_force(m):
    F = np.random.default_rng(m).integers(0, 6, size=(40, m)).astype(float)  # ties included
    fronts = non_dominated_fronts(F)
    rank = np.empty(len(F), dtype=int)
    for r, front in enumerate(fronts):
        rank[front] = r
    assert np.array_equal(rank, _brute_ranks(F))
    assert np.array_equal(pareto_mask(F), rank == 0)


def test_crowding_distance_boundaries_are_infinite_and_interior_normalised():
    F = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(F)
    assert np.isinf(d[0]) and np.isinf(d[3])
    # Point 1: (3-0)/4 + (4-1)/4; point 2: (4-1)/4 + (2-0)/4.
    assert d[1] == pytest.approx(0.75 + 0.75)
    assert d[2] == pytest.approx(0.75 + 0.5)
    assert np.all(np.isinf(crowding_distance(F[:2])))


def test_constrained_rank_puts_infeasible_after_feasible_by_violation():
    F = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [0.0, 0.0], [0.0, 0.0]])
    violation = np.array([0.0, 0.0, 0.0, 0.5, 0.1])
    rank = constrained_rank(F, violation)
    assert list(rank[:3]) == [0, 1, 2]
    assert rank[4] == 3 and rank[3] == 4  # smaller violation first, even though it dominates nothing


def test_survival_order_prefers_rank_then_crowding():
    F = np.array([[0.0, 3.0], [1.0, 2.0], [1.1, 1.9], [3.0, 0.0], [2.0, 3.0]])
    order = survival_order(F)
    assert set(order[:2]) == {0, 3}  # boundary points of the first front
    assert order[-1] == 4  # the only dominated point


def test_hypervolume_of_two_points_by_hand():
    F = np.array([[1.0, 3.0], [2.0, 1.0]])
    ref = np.array([4.0, 4.0])
    assert hypervolume(F, ref) == pytest.approx(3 * 1 + 2 * 2)
    assert hypervolume(np.array([[5.0, 1.0]]), ref) == 0.0  # outside the reference box


@pytest.mark.parametrize("m", [2, 3])
def test_hv_contributions_equal_leave_one_out(m):
    F = np.random.default_rng(10 + m).random((80, m))
    F = F[pareto_mask(F)]
    ref = np.full(m, 0.95)
    total = hypervolume(F, ref)
    expected = [total - hypervolume(np.delete(F, i, axis=0), ref) for i in range(len(F))]
    assert np.allclose(hv_contributions(F, ref), expected)


def test_igd_plus_is_zero_on_the_front_and_grows_away_from_it():
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert igd_plus(front, front) == pytest.approx(0.0)
    assert igd_plus(front + 0.1, front) > igd_plus(front + 0.05, front) > 0


def test_normalise_maps_bounds_to_unit_interval():
    F = np.array([[2.0, 10.0], [4.0, 10.0]])
    out = normalise(F, F.min(axis=0), F.max(axis=0))
    assert np.array_equal(out, [[0.0, 0.0], [1.0, 0.0]])
