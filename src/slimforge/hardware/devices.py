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

import dataclasses
import hashlib
import os
import platform
import socket
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError, UnknownNameError, close_matches
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.hardware.latency import LatencyProtocol, LatencyResult, cpu_model, measure_latencies
from slimforge.hardware.runtime import RUNTIMES, check_threads
from slimforge.io import JsonRecord
from slimforge.registry import Registry

__all__ = [
    "DEVICES",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceMeasurement",
    "LocalOrtDevice",
    "LocalTorchDevice",
    "PreparedModel",
    "TableDevice",
    "get_device",
    "local_info",
    "prepare_onnx",
    "sha256_file",
]

# ONNX operators that make a graph an INT8 model (QDQ format or integer operators).
_INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}
)


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


class Device(ABC):
    """A place that answers latency (and energy) for a model.

    :meth:`measure` / :meth:`measure_many` validate, prepare the models (ONNX export, hash),
    consult the cache, then call the :meth:`_measure` hook. Subclasses implement
    :meth:`describe`, :meth:`_prepare` and :meth:`_measure`.
    """

    #: registry name (the part of a spec before ``:``).
    kind: ClassVar[str] = ""
    #: whether the spec carries an argument (``table:FILE``, ``remote:URL``).
    takes_argument: ClassVar[bool] = False
    #: whether figures are measured (and so worth caching) rather than read from a table.
    cacheable: ClassVar[bool] = True
    #: the runtime a measured figure comes from.
    runtime: ClassVar[str | None] = None

    @property
    def spec(self) -> str:
        """The spec that names this device (``local-cpu``, ``table:FILE``, ...)."""
        return self.kind

    @abstractmethod
    def describe(self) -> DeviceInfo:
        """What the device is (CPU, runtime and version, host)."""

    def measure(
        self,
        model: Any,
        input_shape: Sequence[int] | str | None = None,
        *,
        threads: int = 1,
        protocol: LatencyProtocol | None = None,
        seed: int = 0,
        store: Any = None,
        force: bool = False,
        energy: bool = True,
        progress: bool = False,
    ) -> DeviceMeasurement:
        """Latency (and energy) of one model on this device.

        Args:
            model: an ``.onnx`` file or an ``nn.Module`` (measured devices), or an architecture
                string / genome (table devices).
            input_shape: batch included, e.g. ``(1, 3, 32, 32)``; None takes an ONNX file's own.
            threads: intra-op threads.
            protocol: warm-up and stopping rule; :class:`LatencyProtocol` defaults when None.
            seed: seeds the random input.
            store: a :class:`~slimforge.io.RunStore`; a figure measured before under the
                same conditions comes back from it (``cached=True``) instead of being re-measured.
            force: measure even when the store holds the figure (and replace it).
            energy: add the energy figure (the table's, or the analytic estimate of
                :mod:`slimforge.hardware.energy`).
            progress: tqdm bar on stderr while measuring.
        """
        return self.measure_many(
            [model],
            input_shape,
            threads=threads,
            protocol=protocol,
            seed=seed,
            store=store,
            force=force,
            energy=energy,
            progress=progress,
        )[0]

    def measure_many(
        self,
        models: Sequence[Any],
        input_shape: Sequence[int] | str | None = None,
        *,
        threads: int = 1,
        protocol: LatencyProtocol | None = None,
        seed: int = 0,
        store: Any = None,
        force: bool = False,
        energy: bool = True,
        progress: bool = False,
    ) -> list[DeviceMeasurement]:
        """:meth:`measure` for several models under one set of conditions.

        Local devices interleave the models' runs (:func:`~slimforge.hardware.measure_latencies`),
        so a change of machine load during the call slows them all alike.
        """
        from slimforge.hardware.cache import measurement_conditions

        threads = check_threads(threads)
        shape = parse_input_shape(input_shape) if input_shape is not None else None
        protocol = protocol if protocol is not None else LatencyProtocol()
        if not isinstance(protocol, LatencyProtocol):
            raise InvalidInputError(f"protocol must be a LatencyProtocol, got {type(protocol).__name__}")
        use_store = store is not None and self.cacheable
        self._check_available()
        with tempfile.TemporaryDirectory(prefix="slimforge-device-") as tmp:
            prepared = [
                self._prepare(m, shape, Path(tmp) / f"model{i}.onnx", need_hash=use_store)
                for i, m in enumerate(models)
            ]
            results: list[DeviceMeasurement | None] = [None] * len(prepared)
            conditions: list[dict[str, Any] | None] = [None] * len(prepared)
            if use_store:
                identity = self.describe().identity()
                for i, p in enumerate(prepared):
                    conditions[i] = measurement_conditions(p, identity, threads, protocol)
                    hit = None if force else store.get_measurement(conditions[i])
                    if hit is not None:
                        results[i] = _from_cache(hit)
            todo = [i for i, r in enumerate(results) if r is None]
            if todo:
                fresh = self._measure([prepared[i] for i in todo], threads, protocol, seed, progress)
                for i, result in zip(todo, fresh):
                    if energy and result.energy_mj is None:
                        result = _with_energy(result, prepared[i])
                    # Only a complete result is written, in one transaction: no half rows.
                    if conditions[i] is not None:
                        store.put_measurement(conditions[i], result.to_dict())
                    results[i] = result
            if energy:  # a figure cached without its energy gets it now (not re-measured, not re-written)
                results = [
                    _with_energy(r, p) if r is not None and r.energy_source == "not requested" else r
                    for r, p in zip(results, prepared)
                ]
        return [r for r in results if r is not None]

    def _check_available(self) -> None:
        """Hook: raise :class:`~slimforge.errors.MissingDependencyError` before any work when the
        device's runtime is not installed (the default: nothing to check)."""

    @abstractmethod
    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        """Hook: check ``model`` is something this device answers for; export it if needed."""

    @abstractmethod
    def _measure(
        self,
        models: Sequence[PreparedModel],
        threads: int,
        protocol: LatencyProtocol,
        seed: int,
        progress: bool,
    ) -> list[DeviceMeasurement]:
        """Hook: the figures of prepared models, in order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def _from_cache(hit: dict[str, Any]) -> DeviceMeasurement | None:
    try:
        cached = DeviceMeasurement.from_dict(hit)
    except (SlimforgeError, TypeError, ValueError, KeyError):
        return None  # a row written by another slimforge version: measure again and replace it
    return dataclasses.replace(cached, cached=True)


def _with_energy(result: DeviceMeasurement, model: PreparedModel) -> DeviceMeasurement:
    from slimforge.hardware.energy import estimate_energy

    onnx = model.onnx_path if model.onnx_path is not None and model.onnx_path.suffix == ".onnx" else None
    target = onnx if onnx is not None else model.module  # a .tflite or .pte file: its module, if known
    if target is None or model.input_shape is None:
        return result
    try:
        estimate = estimate_energy(target, model.input_shape, precision=model.precision)
    except SlimforgeError as exc:
        return dataclasses.replace(result, energy_source=f"not available: {exc}")
    return dataclasses.replace(result, energy_mj=estimate.energy_mj, energy_source=estimate.source)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_onnx(model: Any, shape: tuple[int, ...] | None, onnx_path: Path, device: str) -> PreparedModel:
    """An ``.onnx`` file (checked, its input shape resolved) or an ``nn.Module`` exported to ``onnx_path``."""
    from slimforge.hardware.onnx_export import export_onnx
    from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape

    if isinstance(model, nn.Module):
        if shape is None:
            raise InvalidInputError(
                f"device {device}: give the input shape of the {type(model).__name__} model, "
                "e.g. (1, 3, 32, 32)"
            )
        path = export_onnx(model, shape, onnx_path)
        return PreparedModel(type(model).__name__, shape, sha256_file(path), onnx_path=path, precision="fp32")
    if not isinstance(model, (str, Path)):
        raise InvalidInputError(
            f"device {device} measures an .onnx file or a PyTorch model, got {type(model).__name__}"
        )
    path = Path(model)
    proto = load_onnx(path)
    _, declared, _ = onnx_input(proto, path)
    resolved = resolve_input_shape(declared, shape, path)
    precision = "int8" if any(n.op_type in _INT8_OPS for n in proto.graph.node) else "fp32"
    return PreparedModel(str(model), resolved, sha256_file(path), onnx_path=path, precision=precision)


def _measured(
    spec: str, info: DeviceInfo, model: PreparedModel, result: LatencyResult, threads: int
) -> DeviceMeasurement:
    return DeviceMeasurement(
        device=spec,
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


class LocalOrtDevice(Device):
    """This machine's CPU with ONNX Runtime (``local-cpu``): ``.onnx`` files (FP32, INT8 QDQ) or modules."""

    kind = "local-cpu"
    runtime = "onnxruntime"

    def describe(self) -> DeviceInfo:
        return local_info(self.kind, self.runtime)

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        return prepare_onnx(model, shape, onnx_path, self.spec)

    def _measure(
        self,
        models: Sequence[PreparedModel],
        threads: int,
        protocol: LatencyProtocol,
        seed: int,
        progress: bool,
    ) -> list[DeviceMeasurement]:
        info = self.describe()
        out: list[DeviceMeasurement] = [None] * len(models)  # type: ignore[list-item]
        # One measure_latencies call per input shape: the runs of same-shaped models interleave.
        for shape in dict.fromkeys(m.input_shape for m in models):
            group = [i for i, m in enumerate(models) if m.input_shape == shape]
            results = measure_latencies(
                [models[i].onnx_path for i in group],
                shape,
                runtime=self.runtime,
                threads=threads,
                protocol=protocol,
                seed=seed,
                progress=progress,
            )
            for i, result in zip(group, results):
                out[i] = _measured(self.spec, info, models[i], result, threads)
        return out


class LocalTorchDevice(Device):
    """This machine's CPU with PyTorch eager (``local-torch``): ``nn.Module`` models only."""

    kind = "local-torch"
    runtime = "torch"

    def describe(self) -> DeviceInfo:
        return local_info(self.kind, self.runtime)

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(
                f"device {self.spec} runs PyTorch models, not {model!r}; "
                "use --device local-cpu for an .onnx file"
            )
        if shape is None:
            raise InvalidInputError(f"device {self.spec}: give the input shape, e.g. --input 1x3x32x32")
        digest = None
        if need_hash:
            # The cache key is the hash of the model's ONNX export, as for every other device.
            from slimforge.hardware.onnx_export import export_onnx

            digest = sha256_file(export_onnx(model, shape, onnx_path))
        return PreparedModel(type(model).__name__, shape, digest, module=model, precision="fp32")

    def _measure(
        self,
        models: Sequence[PreparedModel],
        threads: int,
        protocol: LatencyProtocol,
        seed: int,
        progress: bool,
    ) -> list[DeviceMeasurement]:
        info = self.describe()
        out = []
        for m in models:  # modules of different shapes cannot share one interleaved call
            (result,) = measure_latencies(
                [m.module],
                m.input_shape,
                runtime=self.runtime,
                threads=threads,
                protocol=protocol,
                seed=seed,
                progress=progress,
            )
            out.append(_measured(self.spec, info, m, result, threads))
        return out


class TableDevice(Device):
    """A device table CSV as a device (``table:FILE``): answers for the architectures of its space.

    The table is one row per architecture (``index,arch,latency_ms[,energy_mj]``), e.g. the
    HW-NAS-Bench Raspberry Pi 5 tables. ``measure`` takes an architecture string or a genome of
    the table's space and refuses anything else (an ``.onnx`` file, a module) with a clear message.

    Args:
        path: the CSV file.
        space: registry name of the space of its ``arch`` column (``nb201``).
    """

    kind = "table"
    takes_argument = True
    cacheable = False

    def __init__(self, path: str | os.PathLike, space: str = "nb201") -> None:
        from slimforge.hardware.tables import read_device_table

        if not str(path):
            raise InvalidInputError("device table: give the CSV file, e.g. --device table:pi5.csv")
        self.path = Path(path)
        self.table = read_device_table(self.path, space)

    @property
    def spec(self) -> str:
        return f"table:{self.path}"

    def describe(self) -> DeviceInfo:
        has = "latency and energy" if self.table.energy_mj is not None else "latency"
        return DeviceInfo(
            kind=self.kind,
            name=self.spec,
            note=f"{has} of {len(self.table)} {self.table.space} architectures read from {self.path}",
        )

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        from slimforge.spaces import get_space

        space = get_space(self.table.space)
        refusal = (
            f"device {self.spec} answers only for {self.table.space} architectures (an architecture string "
            f"such as {self.table.arch[0]!r} or a {space.num_genes}-gene genome)"
        )
        if isinstance(model, (nn.Module, Path)) or (
            isinstance(model, str) and model.lower().endswith(".onnx")
        ):
            raise InvalidInputError(
                f"{refusal}; {_describe_model(model)} is not one: measure it on local-cpu"
            )
        if isinstance(model, str):
            try:
                genome = space.from_string(model)
            except SlimforgeError as exc:
                raise InvalidInputError(f"{refusal}; {model!r} is not one ({exc})") from None
        else:
            try:
                genome = space.validate(model)
            except SlimforgeError as exc:
                raise InvalidInputError(f"{refusal}; {model!r} is not one ({exc})") from None
        label = model if isinstance(model, str) else space.to_string(genome)
        return PreparedModel(label, shape, genome=genome)

    def _measure(
        self,
        models: Sequence[PreparedModel],
        threads: int,
        protocol: LatencyProtocol,
        seed: int,
        progress: bool,
    ) -> list[DeviceMeasurement]:
        info = self.describe()
        out = []
        for m in models:
            assert m.genome is not None
            try:
                row = self.table.row(m.genome)
            except SlimforgeError as exc:
                raise DeviceError(str(exc)) from None
            energy = None if self.table.energy_mj is None else float(self.table.energy_mj[row])
            out.append(
                DeviceMeasurement(
                    device=self.spec,
                    device_info=info,
                    model=m.label,
                    model_sha256=None,
                    input_shape=m.input_shape,
                    threads=None,
                    precision=None,
                    source="table",
                    latency_ms=float(self.table.latency_ms[row]),
                    latency_ms_iqr=None,
                    stable=None,
                    latency=None,
                    energy_mj=energy,
                    # The analytic model needs the network, which a table device does not run.
                    energy_source=f"table {self.path.name}" if energy is not None else "not in the table",
                )
            )
        return out


def _describe_model(model: Any) -> str:
    if isinstance(model, nn.Module):
        return f"a PyTorch {type(model).__name__} model"
    return f"the file {str(model)!r}"


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
