"""``bo``: the optional dependency, the initial design vs the budget, and that it models something."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.search import make_algorithm, minimize
from slimforge.search.indicators import hypervolume
from slimforge.search.pareto import pareto_mask
from slimforge.spaces import get_space
from slimforge.testing.algorithms import toy_problem

NB201 = get_space("nb201")
needs_botorch = pytest.mark.skipif(
    importlib.util.find_spec("botorch") is None,
    reason="bo needs the optional extra: pip install 'slimforge[bo]'",
)
SMALL = {"n_init": 8, "batch_size": 4, "pool_size": 40, "mc_samples": 16, "fit_points": 40}


def test_without_botorch_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "botorch", None)  # makes `import botorch` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'slimforge\[bo\]'") as info:
        make_algorithm("bo", NB201)
    assert len(str(info.value).splitlines()) == 1


@needs_botorch
def test_a_budget_below_the_initial_design_is_refused_before_anything_is_evaluated():
    algo = make_algorithm("bo", NB201, n_init=20)
    with pytest.raises(InvalidInputError, match="budget 10 is below the BO initial design of n_init=20"):
        algo.check_run(budget=10)
    algo.check_run(budget=20)


@needs_botorch
def test_minimize_with_a_budget_inside_the_initial_design_fails_in_one_line():
    problem = toy_problem(NB201)
    with pytest.raises(InvalidInputError, match="below the BO initial design") as info:
        minimize(problem, "bo", budget=5, seed=0, settings={"n_init": 8})
    assert len(str(info.value).splitlines()) == 1


@needs_botorch
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"acquisition": "ei"}, "acquisition must be"),
        ({"kernel": "rbf"}, "kernel must be"),
        ({"mc_samples": 2}, "mc_samples"),
        ({"ref_percentile": 150}, "ref_percentile"),
        ({"n_init": 1}, "n_init"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(InvalidInputError, match=message):
        make_algorithm("bo", NB201, **settings)


@needs_botorch
@pytest.mark.slow
def test_bo_proposals_are_new_networks_and_beat_random_at_a_small_budget():
    problem = toy_problem(NB201)
    # Hypervolume above the median of random networks, as the tabular benchmark scores it.
    rng = np.random.default_rng(99)
    ref = np.median([problem.evaluate(NB201.canonical(NB201.sample(rng))).vector for _ in range(400)], axis=0)

    def hv(result):
        F = np.array([e.vector for e in result.evaluations])
        return hypervolume(F[pareto_mask(F)], ref)

    runs = [minimize(problem, "bo", budget=40, seed=s, settings=SMALL) for s in range(3)]
    genomes = [e.genome for e in runs[0].evaluations]
    assert len(genomes) == len(set(genomes)) == 40
    rand = [hv(minimize(problem, "random", budget=40, seed=s)) for s in range(5)]
    assert np.median([hv(r) for r in runs]) > np.median(rand)


@needs_botorch
@pytest.mark.slow
def test_bo_leaves_torch_global_generator_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    minimize(toy_problem(NB201), "bo", budget=16, seed=0, settings=SMALL)
    assert torch.equal(torch.rand(3), expected)
