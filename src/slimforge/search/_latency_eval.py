"""Latency evaluators: measured on a device, summed from a lookup table, or predicted.

- ``measured_latency`` builds each genome's standalone network (initial weights from ``seed``, so
  the same genome always exports to the same ONNX bytes) and measures it on a device
  (:func:`slimforge.hardware.get_device`: ``local-cpu``, ``local-torch``, ``remote:URL``). With
  ``store_path`` every figure is cached in a run store keyed by the model's ONNX hash and all the
  measurement conditions, so a genome is measured once per conditions, across runs and resumes.
- ``lut_latency`` sums a latency lookup table (:mod:`slimforge.hardware.lut`) built for the space.
- ``latency_predictor`` asks a saved NAS-Bench-201 latency predictor
  (:mod:`slimforge.hardware.predictors`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import format_shape
from slimforge.search._networks import build_seeded, check_num_classes, space_input_shape
from slimforge.search.evaluator import BatchEvaluator, DeviceEvaluator, Evaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["LatencyPredictorEvaluator", "LutLatencyEvaluator", "MeasuredLatencyEvaluator", "search_protocol"]

_REMOTE_OPTIONS = ("token", "token_file", "timeout_s")


def measured_kinds() -> tuple[str, ...]:
    """Device kinds that measure files (every registered device but tables), e.g. ``local-cpu``, ``remote``."""
    from slimforge.hardware import DEVICES

    return tuple(k for k in DEVICES.list() if k != "table")


def search_protocol(time_cap_s: float) -> Any:
    """The latency protocol of a search: the default rule, scaled down to ``time_cap_s`` per network.

    A search measures hundreds of networks, so warm-up and the first spread check come sooner than
    in a one-off measurement; a figure still unstable at the cap keeps ``stable=False`` in the cache.
    """
    from slimforge.hardware import LatencyProtocol

    if isinstance(time_cap_s, bool) or not isinstance(time_cap_s, (int, float)) or not time_cap_s > 0:
        raise InvalidInputError(f"time_cap_s must be a positive number of seconds, got {time_cap_s!r}")
    cap = float(time_cap_s)
    return LatencyProtocol(
        warmup_runs=10, warmup_s=min(0.2, cap), min_runs=20, min_time_s=min(0.5, cap / 2), time_cap_s=cap
    )


class MeasuredLatencyEvaluator(DeviceEvaluator):
    """``latency_ms`` (median), ``latency_iqr_ms`` and ``energy_mj`` of the built network, measured.

    ``energy_mj`` is the device's figure where it gives one, else the analytic estimate of
    :mod:`slimforge.hardware.energy` (NaN when neither is available).

    Args:
        space: the search space.
        device: a measured device: ``local-cpu`` (ONNX Runtime), ``local-torch`` (PyTorch eager),
            ``local-litert``, ``local-openvino``, ``local-executorch`` or ``remote:http://HOST:PORT``.
        input_shape: batch included, e.g. ``"1x3x32x32"``; default the space's natural input.
        threads: intra-op threads.
        time_cap_s: seconds of timed runs per network at most (see :func:`search_protocol`).
        num_classes: classifier outputs of the built network.
        store_path: a run directory or ``.sqlite`` file that caches the figures (created if absent).
        seed: seeds the networks' initial weights and the random input.
        token, token_file, timeout_s: a remote device's options (:class:`slimforge.hardware.RemoteDevice`).
    """

    def __init__(
        self,
        space: SearchSpace,
        device: str = "local-cpu",
        input_shape: Sequence[int] | str | None = None,
        threads: int = 1,
        time_cap_s: float = 2.0,
        num_classes: int = 10,
        store_path: str | os.PathLike | None = None,
        seed: int = 0,
        token: str | None = None,
        token_file: str | os.PathLike | None = None,
        timeout_s: float | None = None,
    ) -> None:
        from slimforge.hardware import get_device
        from slimforge.hardware.runtime import check_threads

        super().__init__(space, ("latency_ms", "energy_mj", "latency_iqr_ms"))
        kind = str(device).strip().partition(":")[0]
        if kind not in measured_kinds():
            raise InvalidInputError(
                f"measured_latency: device {device!r} is not a measured device; use one of "
                f"{', '.join(measured_kinds())} (remote:http://HOST:PORT; a device table goes to the "
                "device_table evaluator)"
            )
        given = {k: v for k, v in zip(_REMOTE_OPTIONS, (token, token_file, timeout_s)) if v is not None}
        if given and kind != "remote":
            raise InvalidInputError(
                f"measured_latency: option(s) {', '.join(given)} are for a remote:URL device, not {device!r}"
            )
        if "token_file" in given:
            given["token_file"] = str(given["token_file"])
        self._device: Any = get_device(str(device), **given)  # checks the spec, URL and token now
        self.device = self._device.spec
        self._device_options = given
        self.input_shape = space_input_shape(space, input_shape)
        self.threads = check_threads(threads)
        self.protocol = search_protocol(time_cap_s)
        self.num_classes = check_num_classes(num_classes)
        self.store_path = None if store_path is None else Path(store_path)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"measured_latency: seed must be a non-negative int, got {seed!r}")
        self.seed = seed
        self._store: Any = None

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        # One call for the batch: a local device interleaves the networks' runs, so a change of
        # machine load during the call slows them all alike.
        models = [build_seeded(self.space, g, self.num_classes, self.seed) for g in genomes]
        results = self._dev().measure_many(
            models,
            self.input_shape,
            threads=self.threads,
            protocol=self.protocol,
            seed=self.seed,
            store=self._cache(),
        )
        return [
            {
                "latency_ms": float(r.latency_ms),
                "energy_mj": math.nan if r.energy_mj is None else float(r.energy_mj),
                "latency_iqr_ms": math.nan if r.latency_ms_iqr is None else float(r.latency_ms_iqr),
            }
            for r in results
        ]

    def describe(self) -> dict[str, Any]:
        # The cache's location and a remote token do not change the figures: left out, so a run
        # resumes with another cache, and no secret is written into the run store.
        return {
            **super().describe(),
            "device": self.device,
            "input_shape": format_shape(self.input_shape),
            "threads": self.threads,
            "protocol": self.protocol.to_dict(),
            "num_classes": self.num_classes,
            "seed": self.seed,
        }


class LutLatencyEvaluator(Evaluator):
    """``latency_ms`` predicted by a latency lookup table (stem + chosen block of every layer + tail).

    Args:
        space: the search space; the table must have been built for it (same space and options).
        path: a CSV written by ``slimforge lut build`` (:func:`slimforge.hardware.build_lut`).
        statistic: sum the entries' ``median`` (the measurement contract) or their ``min``.
    """

    def __init__(self, space: SearchSpace, path: str | os.PathLike, statistic: str = "median") -> None:
        from slimforge.hardware.lut import STATISTICS, LutError, read_lut, space_from_table

        super().__init__(space, ("latency_ms",))
        if statistic not in STATISTICS:
            raise InvalidInputError(
                f"lut_latency: statistic {statistic!r} is not one of {', '.join(STATISTICS)}"
            )
        self.path = Path(path)
        self.statistic = statistic
        self.table = read_lut(self.path)
        fix = f"build one for it with `slimforge lut build --space {space.name} --out FILE`"
        if self.table.space != space.name:
            raise InvalidInputError(
                f"lookup table {self.path} is for the {self.table.space} space, not {space.name}; {fix}"
            )
        built_for = space_from_table(self.table)
        if built_for.network_key() != space.network_key():
            raise InvalidInputError(
                f"lookup table {self.path} was built for {built_for!r}, not {space!r}; {fix}"
            )
        # Every choice of every layer must have an entry: find a gap now, not mid-search.
        for i, n in enumerate(space.num_choices):
            for c in range(n):
                try:
                    self.table.predict(tuple(c if j == i else 0 for j in range(space.num_genes)))
                except LutError as exc:
                    raise InvalidInputError(
                        f"lookup table {self.path} does not cover {space!r}: {exc}; {fix}"
                    ) from None

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        return {"latency_ms": float(self.table.predict(genome, self.statistic))}

    def describe(self) -> dict[str, Any]:
        h = self.table.header
        return {
            **super().describe(),
            "path": os.path.abspath(self.path),
            "statistic": self.statistic,
            "device": h.get("device"),
            "threads": h.get("threads"),
            "input_shape": h.get("input_shape"),
        }


class LatencyPredictorEvaluator(BatchEvaluator):
    """``latency_ms`` from a saved latency predictor (``slimforge predictor fit``); NAS-Bench-201 only.

    Args:
        space: an ``nb201`` space (the predictors featurise NAS-Bench-201 cells).
        path: a JSON file written by :meth:`slimforge.hardware.LatencyPredictor.save`.
    """

    def __init__(self, space: SearchSpace, path: str | os.PathLike) -> None:
        from slimforge.hardware.predictors import NB201Features, load_predictor

        super().__init__(space, ("latency_ms",))
        if space.name != "nb201":
            raise InvalidInputError(
                f"latency predictors model NAS-Bench-201 cells, not the {space.name} space; use "
                "--device lut:FILE (a lookup table) or a measured device (local-cpu) for it"
            )
        self.path = Path(path)
        self.predictor = load_predictor(self.path)
        features = getattr(self.predictor, "features", None)
        if isinstance(features, NB201Features):
            mine = (getattr(space, "channels", None), getattr(space, "cells_per_stage", None))
            if mine != (features.channels, features.cells_per_stage):
                raise InvalidInputError(
                    f"latency predictor {self.path} models networks of {features.channels} channels and "
                    f"{features.cells_per_stage} cells per stage, not those of {space!r}; search "
                    f"NB201Space(channels={features.channels}, cells_per_stage={features.cells_per_stage})"
                )

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        return [{"latency_ms": float(v)} for v in self.predictor.predict(genomes)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": os.path.abspath(self.path), "predictor": self.predictor.name}
