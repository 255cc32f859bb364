"""What a device measurement is: the device, the prepared model and the figure with its conditions."""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import SlimforgeError
from slimforge.hardware.latency import LatencyResult, cpu_model
from slimforge.hardware.runtime import RUNTIMES
from slimforge.io import JsonRecord

__all__ = ["DeviceError", "DeviceInfo", "DeviceMeasurement", "PreparedModel", "local_info"]


class DeviceError(SlimforgeError):
    """A device that cannot be reached, refuses a request or cannot answer for a model."""


@dataclass(frozen=True)
class DeviceInfo(JsonRecord):
    """What a device is: enough to tell two devices' figures apart."""

    kind: str
    name: str
    runtime: str | None = None
    runtime_version: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    hostname: str | None = None
    platform: str | None = None
    note: str = ""
    #: the runtime's backend or delegate (``XNNPACK``); None where the runtime has no choice of one.
    delegate: str | None = None

    def identity(self) -> dict[str, Any]:
        """The fields that identify the hardware and software (the cache key's device part)."""
        # ``delegate`` only where set, so that the keys of figures cached before it existed still match.
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("name", "note") and not (k == "delegate" and v is None)
        }


@dataclass(frozen=True)
class DeviceMeasurement(JsonRecord):
    """One model's latency (and energy) on one device, with how it was obtained.

    ``source`` is ``measured`` (timed now or earlier; ``cached`` says which) or ``table`` (read
    from a device table). ``latency`` holds the full protocol record of a measured figure and
    ``stable=False`` flags one whose spread stayed above the protocol's threshold.
    """

    device: str
    device_info: DeviceInfo
    model: str
    model_sha256: str | None
    input_shape: tuple[int, ...] | None
    threads: int | None
    precision: str | None
    source: str
    latency_ms: float
    latency_ms_iqr: float | None
    stable: bool | None
    latency: LatencyResult | None
    energy_mj: float | None
    energy_source: str
    cached: bool = False

    @classmethod
    def from_latency(
        cls, device: str, info: DeviceInfo, model: PreparedModel, result: LatencyResult, threads: int
    ) -> DeviceMeasurement:
        """A figure timed on ``device`` (``source="measured"``); the energy is added later, if asked for."""
        return cls(
            device=device,
            device_info=info,
            model=model.label,
            model_sha256=model.sha256,
            input_shape=result.input_shape,
            threads=threads,
            precision=model.precision,
            source="measured",
            latency_ms=result.latency_ms_median,
            latency_ms_iqr=result.latency_ms_iqr,
            stable=result.stable,
            latency=result,
            energy_mj=None,
            energy_source="not requested",
        )

    def summary(self) -> str:
        """One line: the figure, its spread and stability, and the energy."""
        if self.latency is not None:
            text = self.latency.summary()
        else:
            text = f"{self.latency_ms:.3f} ms ({self.source})"
        if self.energy_mj is not None:
            text += f"; energy {self.energy_mj:.4g} mJ ({self.energy_source})"
        return text + (" [cached]" if self.cached else "")


@dataclass(frozen=True)
class PreparedModel:
    """A model made ready for one device: its file or module, input shape and ONNX hash."""

    label: str
    input_shape: tuple[int, ...] | None
    sha256: str | None = None
    onnx_path: Path | None = None
    module: nn.Module | None = None
    genome: tuple[int, ...] | None = None
    precision: str | None = None


def local_info(kind: str, runtime: str) -> DeviceInfo:
    """This machine described as device ``kind`` measuring with ``runtime``."""
    engine = RUNTIMES.get(runtime)()
    return DeviceInfo(
        kind=kind,
        name=kind,
        runtime=runtime,
        runtime_version=engine.version(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        hostname=socket.gethostname(),
        platform=f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
        delegate=engine.delegate(),
    )
