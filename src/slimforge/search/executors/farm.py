"""A measurement farm on Ray: several devices of one kind measure a batch of models in parallel.

Each device (a local runtime such as ``local-cpu``, or an agent, ``remote:http://HOST:PORT``) is a
Ray actor that holds one unit of a custom resource of its own, so Ray places it only where that
resource is (the node that *is* the device, for a local runtime) and never starts a second actor
for it; an actor runs one call at a time, so each device measures one model at a time. The farm
hands every idle device the next model until all are measured.

A device that fails while measuring and then no longer answers (its agent is gone, its actor's
process died) is taken out of the farm; one that still answers stays (the model failed, e.g. an agent
stopped it at its time limit). Either way the model is measured on another device; a model no device
could measure is reported in a :class:`FarmError` that names it and every device's reason and keeps
the other models' measurements, never dropped.

Every figure carries its device, and the farm measures each model once, on whichever device is
free: its devices must therefore be the same hardware and runtime (DESIGN.md: figures taken under
different conditions are never mixed), which :class:`MeasurementFarm` checks before measuring.

>>> with MeasurementFarm(["remote:http://pi-a:8765", "remote:http://pi-b:8765"], token=TOKEN) as farm:
...     results = farm.measure_many([model_a, model_b, model_c], (1, 3, 32, 32))
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware.devices import DeviceError, DeviceInfo, DeviceMeasurement, get_device
from slimforge.search.executors import ExecutorError, _import_ray, _start_ray

__all__ = ["FarmError", "FarmMeasurement", "MeasurementFarm"]

#: the identity fields that may differ between a farm's devices (the same hardware on other hosts).
_PER_HOST = ("hostname", "name", "note")


@dataclass(frozen=True)
class FarmMeasurement:
    """One model's measurement by the farm: the figure, the device that took it and when.

    Attributes:
        index: the model's position in the batch.
        measurement: the device's figure, with its conditions.
        device: the spec of the device that measured it.
        attempts: devices tried, this one included (more than 1 when a device failed on it).
        started_s, finished_s: ``time.time()`` on the device's actor around the measurement.
    """

    index: int
    measurement: DeviceMeasurement
    device: str
    attempts: int
    started_s: float
    finished_s: float


class FarmError(ExecutorError):
    """Models the farm could not measure; the others' measurements are kept in :attr:`results`.

    Attributes:
        results: one entry per model of the batch: its :class:`FarmMeasurement`, or None where it failed.
        failures: the failed models' indices, each with every device's reason.
    """

    def __init__(
        self, message: str, results: list[FarmMeasurement | None], failures: dict[int, list[str]]
    ) -> None:
        super().__init__(message)
        self.results = results
        self.failures = failures


class _DeviceActor:
    """The Ray actor of one device: builds the device where Ray placed it and measures on it."""

    def __init__(self, spec: str, options: dict[str, Any]) -> None:
        self.device = get_device(spec, **options)

    def describe(self) -> dict[str, Any]:
        return self.device.describe().to_dict()

    def measure(self, model: Any, settings: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        started = time.time()
        result = self.device.measure(model, **settings)
        return result.to_dict(), started, time.time()


class MeasurementFarm:
    """Devices as Ray actors, each holding a custom resource, measuring models in parallel.

    Args:
        devices: device specs (``local-cpu``, ``remote:http://HOST:PORT``, ...), at least one; the
            same spec twice would measure on one device twice at a time, so it is refused.
        resources: the custom resource of each device, by spec; default ``slimforge-device-<i>``.
            On a running cluster, start the node of a local-runtime device with that resource
            (``ray start --resources='{"slimforge-device-0": 1}'``); an agent's actor may run anywhere
            that reaches the agent.
        address: None starts a local Ray instance that declares every device's resource (shut down
            by :meth:`close`); ``"auto"`` or ``"ray://host:port"`` joins a running cluster.
        num_cpus: CPUs of the local instance (default: Ray's choice); only with ``address=None``.
        retries: devices to try after the first for one model before it is reported as failed.
        temp_dir: Ray's session directory for the local instance (keep it short: socket paths).
        device_options: keyword arguments of :func:`~slimforge.hardware.devices.get_device`
            for the devices that take them (``token=``, ``token_file=``, ``timeout_s=`` for agents).

    Raises:
        DeviceError: a device does not answer (an unreachable agent), before anything is measured.
        InvalidInputError: the devices are not the same hardware and runtime, or a resource no
            node of the cluster offers.
    """

    def __init__(
        self,
        devices: Sequence[str],
        *,
        resources: Mapping[str, str] | None = None,
        address: str | None = None,
        num_cpus: int | None = None,
        retries: int = 2,
        temp_dir: str | os.PathLike | None = None,
        **device_options: Any,
    ) -> None:
        specs = [devices] if isinstance(devices, str) else list(devices)
        if not specs or not all(isinstance(s, str) and s.strip() for s in specs):
            raise InvalidInputError(f"a measurement farm needs device specs, got {devices!r}")
        specs = [s.strip() for s in specs]
        if len(set(specs)) != len(specs):
            raise InvalidInputError(f"a device is listed twice in {', '.join(specs)}; list each device once")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInputError(f"retries must be an integer >= 0, got {retries!r}")
        names = dict(resources or {})
        unknown = sorted(set(names) - set(specs))
        if unknown:
            raise InvalidInputError(f"resources name devices that are not in the farm: {', '.join(unknown)}")
        self._options = {s: _options_for(s, device_options) for s in specs}
        unused = sorted(set(device_options) - {k for o in self._options.values() for k in o})
        if unused:
            raise InvalidInputError(f"no device of the farm takes the option(s) {', '.join(unused)}")
        for spec in specs:  # fails early on a spec the registry does not know
            get_device(spec, **self._options[spec])
        self.specs = specs
        self.resources = {s: names.get(s, f"slimforge-device-{i}") for i, s in enumerate(specs)}
        self.retries = retries
        #: devices taken out of the farm, with the reason (spec -> message).
        self.lost: dict[str, str] = {}
        self._ray = ray = _import_ray()
        self._started = False
        if address is not None and (num_cpus is not None or temp_dir is not None):
            raise InvalidInputError(
                "num_cpus and temp_dir describe a local Ray instance; drop them with address="
            )
        if not ray.is_initialized():
            self._init_ray(address, num_cpus, temp_dir)
        try:
            self._check_feasible()
            actor_cls = ray.remote(_DeviceActor)
            self._actors = {
                s: actor_cls.options(num_cpus=0, resources={self.resources[s]: 1}, max_restarts=0).remote(
                    s, self._options[s]
                )
                for s in specs
            }
            self.info = self._describe_all()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ public API
    def measure_many(
        self, models: Sequence[Any], input_shape: Sequence[int] | str | None = None, **settings: Any
    ) -> list[FarmMeasurement]:
        """Measure every model on one of the farm's devices, in parallel; results in input order.

        ``settings`` are those of :meth:`Device.measure <slimforge.hardware.devices.Device.measure>`
        (``threads``, ``protocol``, ``seed``, ``energy``); a run store is not shared with the actors.

        A failure on a device is a lost device when the device no longer answers (its actor is dead,
        its agent unreachable): it is taken out of the farm. When it still answers, the failure was
        the model's (a model the agent stopped after its time limit, or that crashed its runtime):
        the device stays and the model is tried on another. Either way the model is retried on up
        to ``retries`` other devices.

        Raises:
            FarmError: a model that no device could measure (each device's reason named); the
                other models' measurements are in its ``results``.
            SlimforgeError: the model or the settings are wrong (every device would refuse them).
        """
        if isinstance(models, (str, bytes)) or not hasattr(models, "__iter__"):
            raise InvalidInputError(f"measure_many takes a list of models, got {type(models).__name__}")
        if "store" in settings or "progress" in settings:
            raise InvalidInputError(
                "a farm measures on Ray actors: store= and progress= are not passed to them"
            )
        batch = list(models)
        settings = {**settings, "input_shape": input_shape}
        ray = self._ray
        pending = list(range(len(batch)))[::-1]  # popped from the end: model 0 first
        tried: dict[int, list[str]] = {i: [] for i in pending}
        errors: dict[int, list[str]] = {i: [] for i in pending}
        results: dict[int, FarmMeasurement] = {}
        failed: list[int] = []
        running: dict[Any, tuple[int, str]] = {}
        while pending or running:
            for spec in self._idle(running):
                index = self._next_for(spec, pending, tried)
                if index is None:
                    continue
                tried[index].append(spec)
                ref = self._actors[spec].measure.remote(batch[index], settings)
                running[ref] = (index, spec)
            if not running:
                failed.extend(pending)  # nothing left that could measure them
                break
            done, _ = ray.wait(list(running), num_returns=1)
            index, spec = running.pop(done[0])
            try:
                record, started, finished = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001  (sorted out by _failure)
                errors[index].append(f"{spec}: {self._failure(exc, spec)}")
                if len(tried[index]) <= self.retries and self._alive():
                    pending.append(index)
                else:
                    failed.append(index)
                continue
            measurement = DeviceMeasurement.from_dict(record)
            results[index] = FarmMeasurement(index, measurement, spec, len(tried[index]), started, finished)
        if failed or len(results) != len(batch):
            missing = sorted(set(range(len(batch))) - set(results))
            detail = "; ".join(
                f"model {i}: {', '.join(errors[i]) or 'no device left to try'}" for i in missing
            )
            lost = ", ".join(f"{s} ({why})" for s, why in self.lost.items()) or "none"
            raise FarmError(
                f"the farm could not measure {len(missing)} of {len(batch)} models ({detail}); "
                f"devices lost: {lost}; restart them or measure the models again",
                [results.get(i) for i in range(len(batch))],
                {i: errors[i] for i in missing},
            )
        return [results[i] for i in range(len(batch))]

    def close(self) -> None:
        """Stop the actors (and the local Ray instance the farm started); closing twice is fine."""
        for actor in getattr(self, "_actors", {}).values():
            with contextlib.suppress(Exception):  # already gone
                self._ray.kill(actor)
        self._actors = {}
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> MeasurementFarm:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MeasurementFarm({self.specs!r})"

    # ----------------------------------------------------------------- internals
    def _init_ray(self, address: str | None, num_cpus: int | None, temp_dir: Any) -> None:
        resources = {r: 1 for r in self.resources.values()}
        _start_ray(self._ray, address, num_cpus, resources, temp_dir, what="the measurement farm ")
        self._started = True

    def _check_feasible(self) -> None:
        have = self._ray.cluster_resources()
        for spec, res in self.resources.items():
            if have.get(res, 0.0) < 1:
                raise InvalidInputError(
                    f"device {spec} needs the Ray resource {res!r}, which no node of the cluster offers; "
                    f"start the node of that device with `ray start --resources='{{\"{res}\": 1}}'`"
                )

    def _describe_all(self) -> dict[str, DeviceInfo]:
        ray = self._ray
        refs = {s: a.describe.remote() for s, a in self._actors.items()}
        info: dict[str, DeviceInfo] = {}
        for spec, ref in refs.items():
            try:
                info[spec] = DeviceInfo.from_dict(ray.get(ref))
            except Exception as exc:  # noqa: BLE001
                raise _as_device_error(exc, spec) from None
        kinds = {s: {k: v for k, v in i.identity().items() if k not in _PER_HOST} for s, i in info.items()}
        first = next(iter(kinds.values()))
        for spec, kind in kinds.items():
            if kind != first:
                diff = ", ".join(
                    f"{k}: {first.get(k)!r} vs {kind.get(k)!r}" for k in first if first[k] != kind.get(k)
                )
                raise InvalidInputError(
                    f"the farm's devices differ ({self.specs[0]} vs {spec}: {diff}); a farm measures each "
                    "model on one device, so its figures are comparable only on the same hardware and "
                    "runtime; run one farm per kind of device"
                )
        return info

    def _idle(self, running: dict[Any, tuple[int, str]]) -> list[str]:
        busy = {spec for _, spec in running.values()}
        return [s for s in self.specs if s not in busy and s not in self.lost]

    def _alive(self) -> bool:
        return any(s not in self.lost for s in self.specs)

    @staticmethod
    def _next_for(spec: str, pending: list[int], tried: dict[int, list[str]]) -> int | None:
        # The next model this device has not failed on already.
        for pos in range(len(pending) - 1, -1, -1):
            if spec not in tried[pending[pos]]:
                return pending.pop(pos)
        return None

    def _failure(self, exc: Exception, spec: str) -> str:
        """Why ``spec`` failed on a model; takes the device out when it no longer answers.

        A model's own error (wrong model or settings, which every device would refuse) is raised.
        """
        ray = self._ray
        cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else exc
        if isinstance(cause, SlimforgeError) and not isinstance(cause, DeviceError):
            raise cause
        if isinstance(exc, ray.exceptions.RayActorError):
            why = "its actor died (process killed or node lost)"
        else:
            why = f"{cause or exc}".replace("\n", " ")
            if not isinstance(cause, DeviceError):
                why = f"{type(cause or exc).__name__}: {why}"
            try:  # does the device still answer? then the model, not the device, failed
                ray.get(self._actors[spec].describe.remote())
                return why
            except Exception as probe:  # noqa: BLE001
                probe_cause = getattr(probe, "cause", None) or probe
                why = f"{why}; then {probe_cause}".replace("\n", " ")
        self.lost[spec] = why
        return why


def _options_for(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    # The options this device's constructor takes (a token is an agent's, not local-cpu's).
    from slimforge.hardware.devices import DEVICES

    name = spec.partition(":")[0]
    if name not in DEVICES:
        return dict(options)  # get_device reports the unknown name
    params = inspect.signature(DEVICES.get(name)).parameters
    return {k: v for k, v in options.items() if k in params}


def _as_device_error(exc: Exception, spec: str) -> SlimforgeError:
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, SlimforgeError):
        return cause
    return DeviceError(
        f"device {spec} of the farm could not start: {type(cause).__name__}: {cause}".replace("\n", " ")
    )
