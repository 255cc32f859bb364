"""The device base: :meth:`Device.measure` validates, prepares, consults the cache, then calls the hooks."""

from __future__ import annotations

import dataclasses
import inspect
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware._device_records import DeviceInfo, DeviceMeasurement, PreparedModel
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.hardware.latency import LatencyProtocol
from slimforge.hardware.runtime import check_threads

__all__ = ["Device", "MeasureSettings"]


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """The checked conditions of one :meth:`Device.measure_many` call: what the ``_measure`` hook gets."""

    threads: int
    protocol: LatencyProtocol
    seed: int
    progress: bool


class Device(ABC):
    """A place that answers latency (and energy) for a model.

    :meth:`measure` / :meth:`measure_many` validate, prepare the models (ONNX export, hash),
    consult the cache, then call the :meth:`_measure` hook. Subclasses implement
    :meth:`describe`, :meth:`_prepare` and :meth:`_measure`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hook = cls.__dict__.get("_measure")
        if hook is not None and "threads" in inspect.signature(hook).parameters:
            raise TypeError(
                f"{cls.__qualname__}._measure takes (models, threads, protocol, seed, progress), the "
                "hook's earlier form; it now takes (models, settings) and reads "
                "settings.threads, .protocol, .seed and .progress (hardware.MeasureSettings)"
            )

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
                settings = MeasureSettings(threads, protocol, seed, progress)
                fresh = self._measure([prepared[i] for i in todo], settings)
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
    def _measure(self, models: Sequence[PreparedModel], settings: MeasureSettings) -> list[DeviceMeasurement]:
        """Hook: the figures of prepared models, in order, each timed under ``settings``."""

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
