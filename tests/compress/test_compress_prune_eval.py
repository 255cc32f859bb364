"""The uniform baseline's ratio under a non-monotonic cost, and the note on a final model over its bound."""

from __future__ import annotations

import numpy as np
import pytest

from slimforge.compress.auto import uniform_ratio_for_budget
from slimforge.compress.auto._prune_eval import over_bound_note
from slimforge.errors import InvalidInputError

STEP, ITERATIONS = 0.05, 6
RESOLUTION = STEP / 2**ITERATIONS


def _slow_middle(r: float) -> float:
    """Like ONNX Runtime on ResNet-20: cost falls with the ratio, but ratios in [0.29, 0.45) run slow."""
    return (1.3 if 0.29 <= r < 0.45 else 1.0) - r


def _bisection(cost, bound: float, high: float = 0.8, iterations: int = 10) -> float:
    """The old whole-range bisection, to show what it chose."""
    low = 0.0
    for _ in range(iterations):
        mid = (low + high) / 2
        low, high = (low, mid) if cost(mid) <= bound else (mid, high)
    return high


def test_a_non_monotonic_cost_gets_the_least_pruned_ratio_that_meets_it():
    bound = 0.76  # met on [0.24, 0.29) and from 0.45 on
    ratio = uniform_ratio_for_budget(_slow_middle, bound)
    assert _slow_middle(ratio) <= bound
    assert 0.24 <= ratio <= 0.24 + RESOLUTION
    # The whole-range bisection stepped over the cheap window into the slow middle's far side.
    assert _bisection(_slow_middle, bound) >= 0.45


def test_a_monotonic_cost_gets_the_bisection_s_answer():
    cost = lambda r: (1 - r) ** 2
    ratio = uniform_ratio_for_budget(cost, 0.5)
    assert cost(ratio) <= 0.5 and ratio == pytest.approx(1 - 0.5**0.5, abs=RESOLUTION)
    assert ratio == pytest.approx(_bisection(cost, 0.5), abs=RESOLUTION)


def test_a_ratio_that_met_the_bound_by_a_noisy_timing_is_rejected_when_it_misses_it_again():
    calls: dict[float, int] = {}

    def noisy(r: float) -> float:
        calls[r] = calls.get(r, 0) + 1
        if r == 0.25 and calls[r] == 1:
            return 0.9  # one lucky timing
        return 0.9 if r >= 0.5 else 1.1

    assert uniform_ratio_for_budget(noisy, 1.0) == 0.5
    assert calls[0.25] == 2


def test_the_answer_was_measured_within_the_bound_and_no_earlier_scan_point_meets_it():
    rng = np.random.default_rng(0)
    grid = np.round(np.arange(0, 0.8 + 1e-9, STEP), 6)
    for _ in range(20):
        steps = rng.uniform(0.2, 1.2, 33)  # a random step function of the ratio

        def cost(r: float, steps=steps) -> float:
            return float(steps[int(r * 40)])

        bound = float(rng.uniform(0.3, 0.8))
        ratio = uniform_ratio_for_budget(cost, bound)
        met = [r for r in grid if cost(r) <= bound]
        if not met:
            assert ratio is None
            continue
        assert ratio is not None and cost(ratio) <= bound and ratio <= met[0]
        assert all(cost(r) > bound for r in grid if r < ratio - STEP)


def test_the_unpruned_model_and_an_unreachable_bound():
    assert uniform_ratio_for_budget(lambda r: 1.0 - r, 1.0) == 0.0
    assert uniform_ratio_for_budget(lambda r: 1.0 - r, 0.1) is None
    assert uniform_ratio_for_budget(lambda r: 1.0 - r, 0.2) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_ratio": 1.0}, "max_ratio"),
        ({"scan_step": 0.0}, "scan_step"),
        ({"iterations": -1}, "iterations"),
    ],
)
def test_bad_scan_settings_are_named(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        uniform_ratio_for_budget(lambda r: 1.0 - r, 0.5, **kwargs)


def test_over_bound_note_says_by_how_much_and_why():
    assert over_bound_note("the searched policy", "latency_ms", 0.68, 0.6869) == ""
    note = over_bound_note("the searched policy", "latency_ms", 0.6906, 0.6869, search_cost=0.6806)
    assert note.startswith("; the searched policy measured latency_ms 0.6906")
    assert "0.54 % over the bound 0.6869" in note and "0.6806 when chosen, 0.92 % under it" in note
    assert "measurement noise" in note and "\n" not in note
    macs = over_bound_note("the searched policy", "macs", 101.0, 100.0)
    assert "1.00 % over the bound" in macs and "noise" not in macs


class _MacsLatency:
    """A deterministic stand-in for LatencyRatio: a model's latency is its MACs over the original's (ms)."""

    def __init__(self, original, input_shape, time_cap_s) -> None:  # type: ignore[no-untyped-def]
        from slimforge.hardware import count_macs

        self.input_shape, self.time_cap_s, self.conditions = tuple(input_shape), time_cap_s, "fake"
        self.reference_ms = 1.0
        self._macs0 = count_macs(original, self.input_shape)

    def __call__(self, model, *, time_cap_s=None) -> float:  # type: ignore[no-untyped-def]
        from slimforge.hardware import count_macs

        return count_macs(model, self.input_shape) / self._macs0


@pytest.mark.slow
def test_a_final_latency_over_the_bound_is_reported_with_its_margin_and_why(
    monkeypatch, splits, resnet, resnet_config, cheap
):
    from slimforge.compress import auto_prune
    from slimforge.compress.auto import _prune

    monkeypatch.setattr(_prune, "LatencyRatio", _MacsLatency)
    # The final interleaved measurement: the original 1 ms, both pruned models 0.7 ms (over 0.6).
    monkeypatch.setattr(
        _prune, "measure_model_latencies", lambda models, *a, **k: ([1.0] + [0.7] * (len(models) - 1), "fake")
    )
    result = auto_prune(
        resnet(),
        splits,
        "latency=0.6",
        model_config=resnet_config,
        search_budget=4,
        finetune_epochs=0,
        estimate=cheap,
        seed=0,
        noise_repeats=0,
    )
    assert not result.budget_met and result.rows[1].cost == pytest.approx(0.7)
    assert result.fill is not None and result.fill.cost_after <= 0.6
    assert (
        f"the searched policy measured latency_ms 0.7 at the final measurement, 16.67 % over the bound 0.6 "
        f"(it was {result.fill.cost_after:.4g} when chosen" in result.message
    )
    assert f"the uniform {result.uniform_ratio:g} baseline measured latency_ms 0.7" in result.message
    assert result.message.count("measurement noise") == 2
