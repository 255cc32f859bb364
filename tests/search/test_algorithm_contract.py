"""Every registered search algorithm passes slimforge's shipped algorithm contract."""

from __future__ import annotations

import importlib.util

import pytest

from slimforge.search import ALGORITHMS
from slimforge.testing.algorithms import AlgorithmContract, AlgorithmUnderTest

# Settings that keep each contract search small: the calibrating GAs would otherwise spend the
# whole budget on their 1,000-sample calibration, BO on a large pool.
SMALL = {
    "wsea": {"num_calibration": 20},
    "cea": {"num_calibration": 20},
    "auto": {"global_evaluations": 60, "pop_size": 10},
    "bo": {"n_init": 8, "batch_size": 4, "pool_size": 40, "mc_samples": 16, "fit_points": 40},
}
# The GAs ask 50 children a generation whatever their population: the resume test needs two rounds
# inside the budget (and auto room for both of its phases).
BUDGET = {"bo": 40, "auto": 150, "wsea": 150, "cea": 150}
_HAS_BOTORCH = importlib.util.find_spec("botorch") is not None


def _param(name: str):
    marks = []
    if name == "bo":
        # a GP fit per ask: seconds, not milliseconds
        marks = [pytest.mark.slow]
        if not _HAS_BOTORCH:
            marks.append(pytest.mark.skip(reason="bo needs the optional extra: pip install 'slimforge[bo]'"))
    return pytest.param(name, marks=marks, id=name)


class TestRegisteredAlgorithms(AlgorithmContract):
    @pytest.fixture(params=[_param(n) for n in ALGORITHMS.list()])
    def algorithm(self, request) -> AlgorithmUnderTest:
        name = request.param
        return AlgorithmUnderTest(name, settings=SMALL.get(name, {}), budget=BUDGET.get(name, 60))


class TestModelGuidedAuto(AlgorithmContract):
    """``auto`` with its GP picks on (``model_share``): the picks must keep determinism and resume."""

    @pytest.fixture
    def algorithm(self) -> AlgorithmUnderTest:
        return AlgorithmUnderTest(
            "auto", settings={"pop_size": 20, "model_share": 0.4, "batch_size": 5}, budget=80
        )
