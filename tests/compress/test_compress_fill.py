"""Budget filling: never over the budget, and within one gene's step of it, most sensitive gene first."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.compress.auto import fill_budget
from slimforge.errors import InvalidInputError

# Gene i at choice k costs WEIGHTS[i] * k (a higher choice costs more: direction +1).
WEIGHTS = (5.0, 3.0, 2.0, 7.0)
CHOICES = (6, 6, 6, 6)


def _cost(genome) -> float:  # type: ignore[no-untyped-def]
    return float(sum(w * k for w, k in zip(WEIGHTS, genome)))


@pytest.mark.parametrize("seed", range(8))
def test_filling_never_exceeds_the_budget_and_ends_within_one_step_of_it(seed):
    rng = np.random.default_rng(seed)
    bound = float(rng.uniform(10, 80))
    genome = tuple(int(k) for k in rng.integers(0, 3, size=4))
    while _cost(genome) > bound:
        genome = tuple(max(0, k - 1) for k in genome)
    order = [int(i) for i in rng.permutation(4)]
    filled, result = fill_budget(genome, CHOICES, _cost, bound, order, direction=1)
    assert _cost(filled) == result.cost_after <= bound
    assert all(a >= b for a, b in zip(filled, genome))  # genes only move the expensive way
    for i in range(4):
        if filled[i] + 1 < CHOICES[i]:
            step = (*filled[:i], filled[i] + 1, *filled[i + 1 :])
            assert _cost(step) > bound  # no single step fits any more
    assert [s.cost for s in result.steps] == sorted(s.cost for s in result.steps)


def test_the_most_sensitive_gene_gets_its_steps_first():
    filled, result = fill_budget((0, 0, 0, 0), CHOICES, _cost, 10.0, [2, 0, 1, 3], direction=1)
    # Gene 2 (2 per step) takes every step it can before gene 0 is tried; gene 0's step then no longer fits.
    assert filled == (0, 0, 5, 0) and [s.layer for s in result.steps] == ["2"] * 5


def test_pruning_direction_moves_towards_smaller_ratios():
    cost = lambda g: float(sum(5 - k for k in g))
    filled, result = fill_budget(
        (5, 5), (6, 6), cost, 3.0, [1, 0], direction=-1, names=("a", "b"), values=lambda i, k: k / 10
    )
    assert cost(filled) == 3.0 and filled == (5, 2)  # b, the most sensitive, takes every step that fits
    assert [(s.layer, s.value) for s in result.steps] == [("b", 0.4), ("b", 0.3), ("b", 0.2)]


def test_bad_fill_input_is_refused():
    with pytest.raises(InvalidInputError, match="over its budget"):
        fill_budget((5, 5, 5, 5), CHOICES, _cost, 10.0, [0, 1, 2, 3], direction=1)
    with pytest.raises(InvalidInputError, match="direction"):
        fill_budget((0, 0, 0, 0), CHOICES, _cost, 10.0, [0, 1, 2, 3], direction=2)
    with pytest.raises(InvalidInputError, match="every gene once"):
        fill_budget((0, 0, 0, 0), CHOICES, _cost, 10.0, [0, 1, 1, 3], direction=1)


def test_a_timed_cost_over_the_bound_at_the_start_returns_the_policy_unchanged():
    # A latency timed again can exceed a bound the search's shorter timing met: no fill, no error.
    filled, result = fill_budget((5, 5, 5, 5), CHOICES, _cost, 10.0, [0, 1, 2, 3], direction=1, timed=True)
    assert filled == (5, 5, 5, 5) and result.steps == () and result.cost_before == result.cost_after > 10.0


def test_a_timed_step_is_kept_only_when_a_second_timing_fits_too():
    # Gene 0's first step times low once (9.0) and then at its true cost (11.0): a single timing would
    # keep it; two keep only gene 1's step, which fits both times.
    calls: dict[tuple[int, ...], int] = {}

    def noisy(genome) -> float:  # type: ignore[no-untyped-def]
        calls[genome] = calls.get(genome, 0) + 1
        if genome == (1, 0):
            return 9.0 if calls[genome] == 1 else 11.0
        return float(sum(genome)) * 6.0

    filled, result = fill_budget((0, 0), (2, 2), noisy, 10.0, [0, 1], direction=1, timed=True)
    assert filled == (0, 1) and result.cost_after == 6.0 and calls[(1, 0)] == 2
    assert result.evaluations == 1 + 2 + 2  # the start, gene 0's step twice, gene 1's step twice
    untimed, _ = fill_budget(
        (0, 0), (2, 2), lambda g: 9.0 if g == (1, 0) else sum(g) * 6.0, 10.0, [0, 1], direction=1
    )
    assert untimed == (1, 0)
