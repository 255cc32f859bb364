"""The RL controller: MnasNet's reward, REINFORCE learning, bad settings in one line, every space."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.errors import InvalidInputError
from slimforge.search import Problem, make_algorithm, minimize
from slimforge.search.algorithms.rl import ReinforceController, mnasnet_reward
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import SPACES, get_space
from slimforge.testing.algorithms import toy_problem

NB201 = get_space("nb201")


def test_soft_reward_trades_accuracy_for_latency_as_mnasnet_does():
    # w = -0.07: twice the target latency costs about 5% of the reward, half of it gains about 5%.
    assert mnasnet_reward(0.9, 2.0, 1.0) == pytest.approx(0.9 * 2.0**-0.07)
    assert mnasnet_reward(0.9, 2.0, 1.0) / 0.9 == pytest.approx(0.9526, abs=1e-4)
    assert mnasnet_reward(0.9, 0.5, 1.0) > 0.9
    assert mnasnet_reward(0.9, 1.0, 1.0) == pytest.approx(0.9)


def test_hard_reward_is_accuracy_below_the_target_and_falls_as_one_over_latency_above():
    assert mnasnet_reward(0.9, 0.3, 1.0, reward="hard") == pytest.approx(0.9)
    assert mnasnet_reward(0.9, 1.0, 1.0, reward="hard") == pytest.approx(0.9)
    assert mnasnet_reward(0.9, 3.0, 1.0, reward="hard") == pytest.approx(0.3)


@pytest.mark.parametrize("w", [-1.0, -1.5, 0.07, True, "soft"])
def test_w_outside_minus_one_to_zero_is_refused_naming_it(w):
    with pytest.raises(InvalidInputError, match=r"outside \(-1, 0\]") as info:
        ReinforceController(NB201, w=w)
    assert len(str(info.value).splitlines()) == 1


def test_w_zero_and_the_paper_value_are_accepted():
    assert ReinforceController(NB201, w=0.0).w == 0.0
    assert ReinforceController(NB201).w == -0.07


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"reward": "medium"}, "'soft' or 'hard'"),
        ({"target_latency": -2.0}, "target_latency must be a positive number"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"baseline_decay": 1.0}, "baseline_decay"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(InvalidInputError, match=message):
        make_algorithm("rl", NB201, **settings)


def test_a_target_below_the_cheapest_network_is_refused_before_the_search():
    algo = ReinforceController(NB201, target_latency=0.5)
    with pytest.raises(InvalidInputError, match="below the cheapest network's latency_ms 0.8"):
        algo.check_run(budget=100, lower_bounds={"latency_ms": 0.8, "error": 5.0})
    algo.check_run(budget=100, lower_bounds={"latency_ms": 0.4})  # a reachable target passes
    ReinforceController(NB201).check_run(lower_bounds={"latency_ms": 0.8})  # no target: nothing to check


class _OneGoodChoice(Evaluator):
    """Accuracy rises with how many genes take choice 2; latency is the same for every network."""

    def __init__(self, space):
        super().__init__(space, ("error", "latency_ms"))

    def _evaluate(self, genome):
        return {"error": 50.0 - 6.0 * sum(g == 2 for g in genome), "latency_ms": 1.0}


def test_reinforce_moves_the_policy_to_the_rewarded_choices():
    problem = Problem(NB201, ["error", "latency_ms"], [_OneGoodChoice(NB201)])
    algo = ReinforceController(NB201, seed=0, target_latency=1.0)
    before = np.mean([p[2] for p in algo.probabilities()])
    for _ in range(40):
        asked = algo.ask()
        algo.tell([problem.evaluate(NB201.canonical(g)) for g in asked])
    after = [p[2] for p in algo.probabilities()]
    assert before == pytest.approx(0.2)
    # NB201's canonical form merges cells, so not every gene is equally visible; most must learn.
    assert np.mean(after) > 0.5 and min(after) > 0.2


def test_hard_reward_steers_the_policy_under_the_target():
    problem = toy_problem(NB201)
    algo = ReinforceController(NB201, seed=1, reward="hard", target_latency=1.5, learning_rate=0.1)
    latencies = []
    for _ in range(60):
        asked = algo.ask()
        told = [problem.evaluate(NB201.canonical(g)) for g in asked]
        algo.tell(told)
        latencies.append(np.mean([e.objectives["latency_ms"] for e in told]))
    # The toy's latencies start around 3.5 ms: the controller must learn to come down.
    assert np.mean(latencies[-10:]) < np.mean(latencies[:5]) - 0.5


def test_missing_accuracy_metric_is_named_with_the_fix():
    class LatencyOnly(Evaluator):
        def __init__(self, space):
            super().__init__(space, ("latency_ms", "num_params"))

        def _evaluate(self, genome):
            return {"latency_ms": 1.0 + sum(genome), "num_params": 10.0}

    problem = Problem(NB201, ["num_params", "latency_ms"], [LatencyOnly(NB201)])
    with pytest.raises(InvalidInputError, match="accuracy_metric=NAME"):
        minimize(problem, "rl", budget=20, seed=0)


@pytest.mark.parametrize("space_name", SPACES.list())
def test_works_on_every_space(space_name):
    space = get_space(space_name)
    result = minimize(toy_problem(space), "rl", budget=30, seed=0)
    assert result.num_evaluations == 30 and result.front
