"""The device contract: one test class a measured device subclasses to be checked like the built-in ones.

A device that measures (``local-cpu``, ``local-litert``, ``remote:URL``, a user's own) subclasses
:class:`DeviceContract` and supplies the ``device`` fixture; ``models`` (two models of
``input_shape`` the device measures: PyTorch modules by default, files of its format where it
cannot convert) may be overridden too::

    from slimforge.testing.devices import DeviceContract

    class TestMyBoard(DeviceContract):
        @pytest.fixture
        def device(self):
            return MyBoardDevice()

The suite checks the measurement contract (DESIGN.md): figures carry their conditions (runtime
and version, threads, delegate, protocol), several models are measured in one call in order, a
run store answers a repeated measurement from its cache, bad input is a one-line
:class:`~slimforge.errors.SlimforgeError`, and every result round-trips through JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from slimforge.errors import SlimforgeError
from slimforge.hardware.devices import Device, DeviceInfo, DeviceMeasurement
from slimforge.hardware.latency import LatencyProtocol

__all__ = ["QUICK_PROTOCOL", "DeviceContract", "tiny_net"]

#: a protocol short enough for unit tests (a fraction of a second per model).
QUICK_PROTOCOL = LatencyProtocol(warmup_runs=2, warmup_s=0.05, min_runs=5, min_time_s=0.0, time_cap_s=0.2)


def tiny_net(width: int = 8, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A seeded conv → BN → ReLU → pool → linear network every runtime converts (eval mode)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )
    return net.eval()


class DeviceContract:
    """What every measured device promises. Subclass it and give the ``device`` fixture."""

    #: the input shape the models are measured at.
    input_shape: ClassVar[tuple[int, ...]] = (1, 3, 16, 16)
    protocol: ClassVar[LatencyProtocol] = QUICK_PROTOCOL

    @pytest.fixture
    def device(self) -> Device:
        """The device under test (override in the subclass)."""
        raise NotImplementedError("give the device under test as a `device` fixture")

    @pytest.fixture
    def models(self) -> list[Any]:
        """Two models of :attr:`input_shape` the device measures (two tiny PyTorch networks)."""
        return [tiny_net(8, seed=0), tiny_net(16, seed=1)]

    # ---- describing ---------------------------------------------------------------------------

    def test_describes_itself(self, device: Device) -> None:
        info = device.describe()
        assert isinstance(info, DeviceInfo)
        assert info.kind and info.name == device.spec
        if device.cacheable:
            assert info.runtime and info.runtime_version, "a measured device names its runtime and version"
        assert DeviceInfo.from_dict(info.to_dict()) == info
        identity = info.identity()
        assert "name" not in identity and "note" not in identity

    # ---- measuring ----------------------------------------------------------------------------

    def test_a_figure_carries_its_conditions(self, device: Device, models: list[Any]) -> None:
        result = device.measure(models[0], self.input_shape, threads=1, protocol=self.protocol, energy=False)
        info = device.describe()
        assert isinstance(result, DeviceMeasurement)
        assert result.source == "measured" and result.latency_ms > 0
        assert result.threads == 1 and tuple(result.input_shape) == self.input_shape
        assert result.device_info.runtime == info.runtime
        assert result.device_info.runtime_version == info.runtime_version
        assert result.device_info.delegate == info.delegate
        assert result.latency is not None
        assert result.latency.runtime == info.runtime and result.latency.threads == 1
        assert result.latency.protocol == self.protocol
        assert result.latency.num_runs >= self.protocol.min_runs
        assert DeviceMeasurement.from_dict(result.to_dict()) == result

    def test_several_models_in_one_call_keep_their_order(self, device: Device, models: list[Any]) -> None:
        results = device.measure_many(models, self.input_shape, protocol=self.protocol, energy=False)
        assert len(results) == len(models)
        single = device.measure(models[1], self.input_shape, protocol=self.protocol, energy=False)
        assert results[1].model == single.model and results[1].model_sha256 == single.model_sha256

    def test_a_run_store_answers_a_repeat_from_its_cache(
        self, device: Device, models: list[Any], tmp_path
    ) -> None:
        from slimforge.hardware.cache import open_cache

        store = open_cache(tmp_path / "run")
        try:
            first = device.measure(
                models[0], self.input_shape, protocol=self.protocol, store=store, energy=False
            )
            again = device.measure(
                models[0], self.input_shape, protocol=self.protocol, store=store, energy=False
            )
        finally:
            store.close()
        assert not first.cached and again.cached
        assert again.latency_ms == first.latency_ms and again.model_sha256 == first.model_sha256

    # ---- refusing -----------------------------------------------------------------------------

    @pytest.mark.parametrize("threads", [0, -1, 1.5, True])
    def test_bad_threads_are_refused_in_one_line(
        self, device: Device, models: list[Any], threads: Any
    ) -> None:
        with pytest.raises(SlimforgeError) as err:
            device.measure(models[0], self.input_shape, threads=threads, protocol=self.protocol)
        assert "\n" not in str(err.value)

    def test_something_it_cannot_measure_is_refused_in_one_line(self, device: Device) -> None:
        with pytest.raises(SlimforgeError) as err:
            device.measure(object(), self.input_shape, protocol=self.protocol)
        assert "\n" not in str(err.value)
