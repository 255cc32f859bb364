"""Evaluators: where objective and constraint values come from.

An evaluator gives named metrics (``error``, ``latency_ms``, ``num_params``, ...) for a genome.
They are created through :data:`EVALUATORS`, a registry of factories ``factory(space, **options)``;
``name(options) -> metrics``:

- ``accuracy_table(path)`` -> ``error``, ``accuracy`` (a CSV ``index,arch,accuracy``);
- ``device_table(path)`` -> ``latency_ms`` [, ``energy_mj``] (a CSV ``index,arch,latency_ms[,energy_mj]``);
- ``supernet_accuracy(checkpoint, data, eval_images, bn_images, batch_size, device, seed)`` ->
  ``error``, ``accuracy`` (inherited weights of a trained supernet, after BN re-calibration);
- ``proxy(proxies, data, batch_size, seed, num_classes, reference)`` -> ``proxy_score_neg``,
  ``proxy_score`` (zero-cost proxies, standardised against a fixed reference sample);
- ``calibrated_accuracy(members, blend)`` -> ``error``, ``accuracy`` (the estimator a run's audit chose,
  through a blend fitted on its calibration set);
- ``predictor(path)`` -> ``predicted_error``, ``predicted_accuracy`` [, ``predicted_error_std``];
- ``measured_latency(device, input_shape, threads, time_cap_s, num_classes, store_path, seed,
  token, token_file, timeout_s)`` -> ``latency_ms``, ``energy_mj``, ``latency_iqr_ms``;
- ``lut_latency(path, statistic)`` -> ``latency_ms`` (a latency lookup table);
- ``latency_predictor(path)`` -> ``latency_ms`` (a saved NAS-Bench-201 latency predictor);
- ``num_params(num_classes)`` -> ``num_params``; ``macs(input_shape, num_classes)`` -> ``macs``;
  ``peak_memory(input_shape, num_classes)`` -> ``peak_mem_bytes``;
  ``model_size(num_classes, weight_bits)`` -> ``model_bytes``.

Evaluators travel to worker processes by pickle (process and Ray executors), so they hold plain
data; what is costly to make (a loaded supernet, a data set, an open run store) is made on first
use and left out of the pickle (:attr:`Evaluator._transient`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.spaces import Genome, SearchSpace

__all__ = ["EVALUATORS", "BatchEvaluator", "DeviceEvaluator", "Evaluator", "make_evaluator"]


class Evaluator(ABC):
    """Gives the values of :attr:`metrics` for a genome of :attr:`space`.

    Evaluators are sent to worker processes by the process and Ray executors, so they hold
    plain data (arrays, dicts, paths); a live model, data set or open file is made on first use,
    kept in an attribute named in :attr:`_transient`, and left out when the evaluator is pickled.
    """

    #: attributes made on first use (models, data, open stores) that a pickle leaves out (as None).
    _transient: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: SearchSpace, metrics: tuple[str, ...]) -> None:
        self.space = space
        self.metrics = tuple(metrics)

    def evaluate(self, genome: Genome) -> dict[str, float]:
        """Metric name -> value for a (validated) genome; every name in :attr:`metrics` is present."""
        values = self._evaluate(self.space.validate(genome))
        missing = [m for m in self.metrics if m not in values]
        if missing:
            raise InvalidInputError(f"{type(self).__name__} gave no value for {', '.join(missing)}")
        return values

    def evaluate_many(self, genomes: Sequence[Genome]) -> list[dict[str, float]]:
        """:meth:`evaluate` of each genome, in order (batching evaluators override :meth:`_evaluate_many`)."""
        valid = [self.space.validate(g) for g in genomes]
        if not valid:
            return []
        out = self._evaluate_many(valid)
        if len(out) != len(valid):
            raise InvalidInputError(f"{type(self).__name__} gave {len(out)} results for {len(valid)} genomes")
        for values in out:
            missing = [m for m in self.metrics if m not in values]
            if missing:
                raise InvalidInputError(f"{type(self).__name__} gave no value for {', '.join(missing)}")
        return out

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        """Compute the metrics of validated genomes (one by one unless overridden)."""
        return [self._evaluate(g) for g in genomes]

    @abstractmethod
    def _evaluate(self, genome: Genome) -> dict[str, float]:
        """Compute the metrics of a validated genome."""

    def describe(self) -> dict[str, Any]:
        """A JSON description (kind and options) stored with a run, to refuse a mismatched resume."""
        return {"kind": type(self).__name__, "metrics": list(self.metrics)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._transient:
            if name in state:
                state[name] = None
        return state


class BatchEvaluator(Evaluator):
    """An evaluator that works in batches (one model load, one measurement call, one store read):
    subclasses implement :meth:`_evaluate_many`, and one genome is a batch of one."""

    @abstractmethod
    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        """Compute the metrics of validated genomes, in order."""

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        return self._evaluate_many([genome])[0]


class DeviceEvaluator(BatchEvaluator):
    """A batch evaluator that measures on a device and may cache the figures in a run store.

    Subclasses set :attr:`device` (a spec for :func:`slimforge.hardware.get_device`, with
    :attr:`_device_options`) and :attr:`store_path` (None: no cache); :meth:`_dev` and :meth:`_cache`
    open them on first use (again after a pickle, which leaves them out), :meth:`close` closes the cache.
    """

    _transient = ("_device", "_store")

    device: str
    store_path: Any
    _device: Any = None
    _store: Any = None
    _device_options: Mapping[str, Any] = MappingProxyType({})

    def _dev(self) -> Any:
        if self._device is None:
            from slimforge.hardware import get_device

            self._device = get_device(self.device, **self._device_options)
        return self._device

    def _cache(self) -> Any:
        if self._store is None and self.store_path is not None:
            from slimforge.hardware import open_cache

            self._store = open_cache(self.store_path)
        return self._store

    def close(self) -> None:
        """Close the measurement cache (it reopens on the next evaluation)."""
        if self._store is not None:
            self._store.close()
            self._store = None


EvaluatorFactory = Callable[..., Evaluator]

EVALUATORS: Registry[EvaluatorFactory] = Registry("evaluator")
EVALUATORS.register("accuracy_table", "slimforge.search.tabular:TabularAccuracyEvaluator")
EVALUATORS.register("device_table", "slimforge.search.tabular:TabularDeviceEvaluator")
EVALUATORS.register("num_params", "slimforge.search.params:NumParamsEvaluator")
EVALUATORS.register("supernet_accuracy", "slimforge.search._supernet_eval:SupernetAccuracyEvaluator")
EVALUATORS.register("proxy", "slimforge.search._proxy_eval:ProxyEvaluator")
EVALUATORS.register("calibrated_accuracy", "slimforge.search._calibrated_eval:CalibratedAccuracyEvaluator")
EVALUATORS.register("predictor", "slimforge.search._predictor_eval:PredictorEvaluator")
EVALUATORS.register("measured_latency", "slimforge.search._latency_eval:MeasuredLatencyEvaluator")
EVALUATORS.register("lut_latency", "slimforge.search._latency_eval:LutLatencyEvaluator")
EVALUATORS.register("latency_predictor", "slimforge.search._latency_eval:LatencyPredictorEvaluator")
EVALUATORS.register("macs", "slimforge.search._cost_eval:MacsEvaluator")
EVALUATORS.register("peak_memory", "slimforge.search._cost_eval:PeakMemoryEvaluator")
EVALUATORS.register("model_size", "slimforge.search._cost_eval:ModelSizeEvaluator")


def make_evaluator(name: str, space: SearchSpace, **options: Any) -> Evaluator:
    """Create the evaluator registered as ``name`` for ``space``.

    An option the evaluator does not take raises :class:`~slimforge.errors.InvalidInputError`
    naming the options it does take.
    """
    factory = EVALUATORS.get(name)
    signature = inspect.signature(factory)
    try:
        signature.bind(space, **options)
    except TypeError as exc:
        accepted = ", ".join(p for p in signature.parameters if p != "space") or "no options"
        raise InvalidInputError(f"evaluator {name!r}: {exc} (it takes: {accepted})") from None
    return factory(space, **options)
