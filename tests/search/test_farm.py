"""The measurement farm (issue 22): two agents on 127.0.0.1 as Ray actors on a local Ray instance of 2
workers measure a batch in parallel, each one model at a time; a device that dies is replaced by the
other, and an unreachable agent is a one-line error before anything is measured."""

from __future__ import annotations

import itertools
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware import LatencyProtocol, export_onnx
from slimforge.hardware.agent import AgentServer, runaway_model
from slimforge.hardware.devices import DeviceError

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'slimforge[ray]')")

from slimforge.search.executors import ExecutorError
from slimforge.search.executors.farm import FarmError, MeasurementFarm

# Ray and the agents take seconds to start; a local Ray instance runs in a child pytest (tests/conftest.py)
pytestmark = [pytest.mark.slow, pytest.mark.isolated]

TOKEN = "test-token-0123456789"
QUICK = LatencyProtocol(warmup_runs=2, warmup_s=0.05, min_runs=5, min_time_s=0.0, time_cap_s=0.2)
SLOTS = ("dev-a", "dev-b", "dev-c")


@pytest.fixture(scope="module")
def ray_instance():
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    temp_dir = tempfile.mkdtemp(prefix="sffarm-", dir="/tmp")  # Ray's socket paths must stay short
    try:
        ray.init(
            num_cpus=2,
            resources={slot: 1 for slot in SLOTS},
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=temp_dir,
        )
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(temp_dir, ignore_errors=True)
        pytest.skip(f"Ray cannot start a local instance in this sandbox: {exc}")
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def agents():
    with AgentServer(TOKEN, "127.0.0.1", 0) as a, AgentServer(TOKEN, "127.0.0.1", 0) as b:
        yield f"remote:{a.url}", f"remote:{b.url}"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("farm")
    torch.manual_seed(0)
    return [
        export_onnx(
            nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
            ),
            (1, 3, 16, 16),
            folder / f"net{width}.onnx",
        )
        for width in (4, 8, 12, 16)
    ]


def _farm(specs: list[str]) -> MeasurementFarm:
    return MeasurementFarm(specs, resources=dict(zip(specs, SLOTS)), token=TOKEN, timeout_s=30.0)


def test_two_agents_measure_in_parallel_one_model_at_a_time_each(ray_instance, agents, models) -> None:
    with _farm(list(agents)) as farm:
        results = farm.measure_many(models, protocol=QUICK, energy=False)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.measurement.model for r in results] == [str(m) for m in models]
    assert all(r.measurement.latency_ms > 0 and r.attempts == 1 for r in results)
    assert {r.device for r in results} == set(agents)  # both devices measured
    for spec in agents:  # never two measurements at once on one device
        spans = sorted((r.started_s, r.finished_s) for r in results if r.device == spec)
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
    assert not farm.lost


def test_a_device_that_dies_is_replaced_by_another(ray_instance, agents, models) -> None:
    with AgentServer(TOKEN, "127.0.0.1", 0) as doomed:
        dying = f"remote:{doomed.url}"
        farm = _farm([dying, agents[0]])
    # The agent is gone once the farm is up: its model goes to the other device.
    with farm:
        results = farm.measure_many(models[:3], protocol=QUICK, energy=False)
    assert [r.device for r in results] == [agents[0]] * 3
    assert max(r.attempts for r in results) == 2  # one model was tried on the dead agent first
    assert list(farm.lost) == [dying] and "connection refused" in farm.lost[dying]


def test_a_device_whose_actor_dies_is_replaced(ray_instance, agents, models) -> None:
    with _farm(list(agents)) as farm:
        ray.kill(farm._actors[agents[1]])  # the actor's process is gone (a node lost, an OOM kill)
        results = farm.measure_many(models[:2], protocol=QUICK, energy=False)
    assert [r.device for r in results] == [agents[0]] * 2
    assert list(farm.lost) == [agents[1]] and "actor died" in farm.lost[agents[1]]


def test_a_model_no_device_can_measure_is_reported(ray_instance, models) -> None:
    with AgentServer(TOKEN, "127.0.0.1", 0) as doomed:
        farm = _farm([f"remote:{doomed.url}"])
    with farm, pytest.raises(ExecutorError, match=r"could not measure 2 of 2 models .*model 0: remote:"):
        farm.measure_many(models[:2], protocol=QUICK, energy=False)


def test_a_model_that_fails_everywhere_is_reported_and_the_devices_stay(
    ray_instance, models, tmp_path
) -> None:
    runaway = tmp_path / "runaway.onnx"
    runaway.write_bytes(runaway_model())  # a Loop the agents stop after their time limit (504)
    with (
        AgentServer(TOKEN, "127.0.0.1", 0, max_seconds=1.0) as a,
        AgentServer(TOKEN, "127.0.0.1", 0, max_seconds=1.0) as b,
        _farm([f"remote:{a.url}", f"remote:{b.url}"]) as farm,
    ):
        with pytest.raises(FarmError, match="could not measure 1 of 3 models") as info:
            farm.measure_many([models[0], runaway, models[1]], protocol=QUICK, energy=False)
        assert not farm.lost  # the agents still answer: the model failed, not the devices
    results, failures = info.value.results, info.value.failures
    assert results[1] is None and results[0] is not None and results[2] is not None
    assert list(failures) == [1] and len(failures[1]) == 2  # tried on both devices


def test_unreachable_agent_is_a_one_line_error(ray_instance, agents) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        spec = f"remote:http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(DeviceError, match="connection refused") as info:
            _farm([agents[0], spec])
    assert "\n" not in str(info.value)


def test_devices_of_different_kinds_are_refused(ray_instance, agents) -> None:
    with pytest.raises(InvalidInputError, match="the farm's devices differ"):
        _farm(["local-cpu", agents[0]])
