"""Devices: where a latency figure comes from, behind one registry.

A device answers "how fast is this model here?" with a :class:`DeviceMeasurement` that carries
the figure and every condition it was taken under (DESIGN.md, measurement contract):

- ``local-cpu``: ONNX Runtime on this machine's CPU (FP32 and INT8 QDQ ``.onnx`` files);
- ``local-torch``: PyTorch eager on this machine's CPU;
- ``local-litert``, ``local-openvino``, ``local-executorch``: LiteRT (XNNPACK delegate), OpenVINO
  (CPU plugin) and ExecuTorch (XNNPACK) on this machine's CPU, each an optional extra
  (:mod:`slimforge.hardware.runtimes`); a PyTorch model is converted to the runtime's format first;
- ``table:FILE``: a device table CSV (``index,arch,latency_ms[,energy_mj]``, as under
  ``shared/data/nb201``) that answers for the architectures of its space (nb201);
- ``remote:http://HOST:PORT``: an edge device running ``slimforge agent serve``
  (:mod:`slimforge.hardware.agent`).

``get_device("table:pi5.csv").measure(arch)`` is the whole API; ``measure(..., store=RunStore)``
caches measured figures in a run store keyed by their conditions (:mod:`slimforge.hardware.cache`).
"""

from __future__ import annotations

from typing import Any

from slimforge.errors import InvalidInputError, UnknownNameError, close_matches
from slimforge.hardware._device_base import Device, MeasureSettings
from slimforge.hardware._device_local import (
    LocalOrtDevice,
    LocalTorchDevice,
    convert_beside,
    prepare_onnx,
    sha256_file,
)
from slimforge.hardware._device_records import (
    DeviceError,
    DeviceInfo,
    DeviceMeasurement,
    PreparedModel,
    local_info,
)
from slimforge.hardware._device_table import TableDevice
from slimforge.registry import Registry

__all__ = [
    "DEVICES",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceMeasurement",
    "LocalOrtDevice",
    "LocalTorchDevice",
    "MeasureSettings",
    "PreparedModel",
    "TableDevice",
    "convert_beside",
    "get_device",
    "local_info",
    "prepare_onnx",
    "sha256_file",
]

#: device kinds; a spec is ``NAME`` or ``NAME:ARGUMENT`` for kinds that take an argument.
DEVICES: Registry[type[Device]] = Registry("device")
DEVICES.register(LocalOrtDevice.kind, LocalOrtDevice)
DEVICES.register(LocalTorchDevice.kind, LocalTorchDevice)
DEVICES.register(TableDevice.kind, TableDevice)
DEVICES.register("remote", "slimforge.hardware.agent:RemoteDevice")
# Deployment runtimes (optional extras): imported when used.
DEVICES.register("local-litert", "slimforge.hardware.runtimes._devices:LocalLiteRtDevice")
DEVICES.register("local-openvino", "slimforge.hardware.runtimes._devices:LocalOpenVinoDevice")
DEVICES.register("local-executorch", "slimforge.hardware.runtimes._devices:LocalExecuTorchDevice")

_FORMS = (
    "local-cpu, local-torch, local-litert, local-openvino, local-executorch, table:FILE.csv, "
    "remote:http://HOST:PORT"
)


def get_device(spec: str, **options: Any) -> Device:
    """The device named by ``spec``: ``local-cpu``, ``local-torch``, ``local-litert``, ``local-openvino``,
    ``local-executorch``, ``table:FILE``, ``remote:URL``.

    ``options`` go to the device's constructor (``token=``, ``timeout_s=`` for a remote device).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"device spec must be a non-empty string, got {spec!r}; use one of {_FORMS}")
    spec = spec.strip()
    name, sep, argument = spec.partition(":")
    if name not in DEVICES:
        hint = close_matches(name, DEVICES.list())
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise UnknownNameError(f"unknown device {spec!r}{did_you_mean} (known forms: {_FORMS})")
    cls = DEVICES.get(name)
    if cls.takes_argument:
        if not argument:
            raise InvalidInputError(
                f"device {name!r} needs an argument: write {name}:... (known forms: {_FORMS})"
            )
        return cls(argument, **options)
    if sep:
        raise InvalidInputError(f"device {name!r} takes no argument, got {spec!r}; write just {name}")
    return cls(**options)
