"""Latency measurement: protocol, runtimes registry, conditions recorded, stability flag, self-consistency."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from slimforge.errors import InputShapeError, InvalidInputError, UnknownNameError
from slimforge.hardware import (
    RUNTIMES,
    LatencyProtocol,
    LatencyResult,
    export_onnx,
    measure_latencies,
    measure_latency,
    sample_latency,
)
from slimforge.zoo import create_model

QUICK = LatencyProtocol(warmup_runs=2, min_runs=5, min_time_s=0.0, time_cap_s=0.3)


pytestmark = pytest.mark.usefixtures("one_thread")


def small_net(width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, groups=width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


def test_registry_lists_both_runtimes() -> None:
    assert {"onnxruntime", "torch"} <= set(RUNTIMES.list())
    with pytest.raises(UnknownNameError, match="onnxruntime"):
        measure_latency(small_net(), (1, 3, 8, 8), runtime="onnxrt")


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_raise(threads) -> None:
    with pytest.raises(InvalidInputError, match="threads"):
        measure_latency(small_net(), (1, 3, 8, 8), threads=threads, protocol=QUICK)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_runs": 0}, {"time_cap_s": 0}, {"rel_iqr_threshold": -0.1}, {"min_runs": 10, "max_runs": 5}],
)
def test_bad_protocols_raise(kwargs) -> None:
    with pytest.raises(InvalidInputError, match="latency protocol"):
        LatencyProtocol(**kwargs)


def test_constant_work_is_stable_and_stops_early() -> None:
    protocol = LatencyProtocol(
        warmup_runs=1, min_runs=10, min_time_s=0.0, time_cap_s=5.0, rel_iqr_threshold=0.5
    )
    samples = sample_latency(lambda: time.sleep(0.002), protocol)
    assert samples.stable
    assert len(samples.samples_ms) < 200 and samples.measure_s < 2.0  # stopped on the spread, not the cap
    assert all(s >= 2.0 for s in samples.samples_ms)


def test_wild_spread_is_flagged_unstable_at_the_cap() -> None:
    delays = iter([0.0, 0.004] * 10_000)
    protocol = LatencyProtocol(
        warmup_runs=0, min_runs=4, min_time_s=0.0, time_cap_s=0.25, rel_iqr_threshold=0.05
    )
    samples = sample_latency(lambda: time.sleep(next(delays)), protocol)
    assert not samples.stable
    assert 0.25 <= samples.measure_s < 1.0


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_measure_latency_records_its_conditions(runtime) -> None:
    model = small_net().train()
    threads_before = torch.get_num_threads()
    result = measure_latency(model, (2, 3, 8, 8), runtime=runtime, threads=1, protocol=QUICK)
    assert result.runtime == runtime and result.runtime_version
    assert result.threads == 1 and result.batch_size == 2 and result.input_shape == (2, 3, 8, 8)
    assert result.cpu_model and result.cpu_count >= 1 and result.statistic == "median"
    assert result.num_runs >= QUICK.min_runs or result.measure_s >= QUICK.time_cap_s
    assert result.latency_ms_q1 <= result.latency_ms_median <= result.latency_ms_q3
    assert result.latency_ms_min <= result.latency_ms_median
    assert result.latency_ms_iqr == pytest.approx(result.latency_ms_q3 - result.latency_ms_q1)
    assert LatencyResult.from_json(result.to_json()) == result
    assert model.training and torch.get_num_threads() == threads_before


def test_ort_runs_an_onnx_file_and_checks_its_shape(tmp_path) -> None:
    path = export_onnx(small_net(), (1, 3, 8, 8), tmp_path / "n.onnx")
    result = measure_latency(path, (1, 3, 8, 8), protocol=QUICK)
    assert result.latency_ms_median > 0
    with pytest.raises(InputShapeError, match="n.onnx"):
        measure_latency(path, (1, 3, 9, 9), protocol=QUICK)
    with pytest.raises(InvalidInputError, match="onnxruntime"):
        measure_latency(path, (1, 3, 8, 8), runtime="torch", protocol=QUICK)


def test_interleaved_measurement_gives_one_result_per_model() -> None:
    small, large = small_net(4), small_net(32)
    a, b = measure_latencies([small, large], (1, 3, 16, 16), runtime="onnxruntime", protocol=QUICK)
    assert a.input_shape == b.input_shape == (1, 3, 16, 16)
    assert a.num_runs >= QUICK.min_runs and b.num_runs >= QUICK.min_runs
    assert a.measure_s <= QUICK.time_cap_s + 0.2 and b.measure_s <= QUICK.time_cap_s + 0.2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runtime", "model", "shape"),
    [
        ("onnxruntime", "small", (1, 3, 32, 32)),
        ("torch", "small", (1, 3, 32, 32)),
        ("onnxruntime", "mobilenet_v3_small", (1, 3, 64, 64)),
    ],
)
def test_same_model_measured_twice_agrees_within_ten_percent(runtime, model, shape) -> None:
    """Self-consistency: the same model measured twice gives medians within 10%.

    The two measurements are independent (each its own session, export, warm-up and statistics)
    and taken together. The machine may be shared, so the protocol is made robust rather than the
    assertion weaker: the runs of the two measurements are interleaved in short blocks, so a change
    in load hits both alike; each measurement runs at least a second, under a time cap, and
    reports the median.
    """
    net = small_net(16) if model == "small" else create_model(model, num_classes=10)
    protocol = LatencyProtocol(warmup_runs=20, min_runs=50, min_time_s=1.0, time_cap_s=3.0)
    first, second = measure_latencies([net, net], shape, runtime=runtime, protocol=protocol)
    low, high = sorted([first.latency_ms_median, second.latency_ms_median])
    assert high / low < 1.10, (first.summary(), second.summary())
