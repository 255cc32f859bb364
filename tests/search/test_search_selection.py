"""Selection helpers: best under constraints, knee point, within epsilon of the best."""

from __future__ import annotations

import pytest

from slimforge.errors import InvalidInputError
from slimforge.search import Evaluation
from slimforge.search.selection import best, knee_point, within_of_best


def _e(i, error, latency, *, feasible=True, params=1e6):
    return Evaluation(
        genome=(i,),
        arch=f"a{i}",
        objectives={"error": error, "latency_ms": latency},
        feasible=feasible,
        violation=0.0 if feasible else 1.0,
        metrics={"error": error, "latency_ms": latency, "num_params": params},
    )


FRONT = [_e(0, 5.0, 10.0), _e(1, 6.0, 3.0), _e(2, 9.0, 2.0), _e(3, 20.0, 1.0)]
INFEASIBLE = _e(9, 1.0, 0.5, feasible=False)


def test_knee_is_the_point_farthest_below_the_line_through_the_extremes():
    # Normalised: (0, 1), (1/15, 2/9), (4/15, 1/9), (1, 0): sums 1, 0.29, 0.38, 1.
    assert knee_point(FRONT + [INFEASIBLE]).genome == (1,)
    assert knee_point([]) is None
    assert knee_point([INFEASIBLE]) is None


def test_knee_ignores_dominated_points():
    dominated = _e(5, 6.5, 3.5)
    assert knee_point(FRONT + [dominated]).genome == (1,)


def test_best_respects_extra_constraints_and_skips_infeasible():
    everything = FRONT + [INFEASIBLE]
    assert best(everything, "error").genome == (0,)
    assert best(everything, "error", constraints=["latency_ms <= 2.5"]).genome == (2,)
    assert best(everything, "error", constraints=["latency_ms <= 0.1"]) is None
    with pytest.raises(InvalidInputError, match="no metric 'energy_mj'"):
        best(everything, "energy_mj")


def test_within_epsilon_of_best_takes_the_cheapest():
    assert within_of_best(FRONT, 0.5).genome == (0,)
    assert within_of_best(FRONT, 1.0).genome == (1,)
    assert within_of_best(FRONT, 4.0).genome == (2,)
    assert within_of_best(FRONT, 4.0, cost="num_params").genome == (0,)  # a tie in cost: lower error wins
    with pytest.raises(InvalidInputError, match="eps"):
        within_of_best(FRONT, -1.0)
