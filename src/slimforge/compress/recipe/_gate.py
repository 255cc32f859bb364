"""Measured gates: a compression stage is kept only when the target runtime says it did not slow the model.

MACs and parameter counts do not predict latency on a real runtime: channel counts such as 11, 5,
33 and 67 can make a pruned MobileNetV2 five times *slower* in ONNX Runtime than the unpruned
one, and an INT8 file can run slower than its FP32 export. So every stage that changes the
exported graph (structure or precision) is timed against the model it started from, interleaved
on the target device (:func:`slimforge.hardware.compare.compare_latencies`). A stage slower beyond
the tolerance is repaired where the fix is known (the pruning stage picks its channel rounding by
measurement) or dropped, and the report says which and why. With ``objective="size"`` a slower
stage that makes the file smaller is kept, and the report says it is slower.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = ["GATE_OBJECTIVES", "GateConfig", "GateVerdict", "Gatekeeper"]

#: what a stage must not make worse: latency (default), size (slower is allowed when smaller), none.
GATE_OBJECTIVES = ("latency", "size", "none")


@dataclass(frozen=True)
class GateConfig(JsonRecord):
    """How compression stages are checked by measurement.

    Args:
        objective: ``latency`` (a stage slower than its input beyond ``tolerance`` is repaired or
            dropped), ``size`` (a slower stage is kept when its file is smaller, and reported as
            slower) or ``none`` (no measured gate; stages are kept by the accuracy budget alone).
        device: the device spec the stages are timed on (``local-cpu``, ``remote:URL``, ...).
        threads: runtime threads on that device.
        tolerance: relative slow-down counted as measurement noise (0.05: 5 %).
        rounds: interleaved measurement rounds per comparison.
        time_cap_s: seconds of timed runs per model and comparison, spread over the rounds.
    """

    objective: str = "latency"
    device: str = "local-cpu"
    threads: int = 1
    tolerance: float = 0.05
    rounds: int = 5
    time_cap_s: float = 1.5

    def __post_init__(self) -> None:
        if self.objective not in GATE_OBJECTIVES:
            raise InvalidInputError(
                f"gate objective {self.objective!r} is not one of {', '.join(GATE_OBJECTIVES)}"
            )
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise InvalidInputError(f"gate threads must be an integer >= 1, got {self.threads!r}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or not 1 <= self.rounds <= 100:
            raise InvalidInputError(f"gate rounds must be an integer in 1..100, got {self.rounds!r}")
        if not 0 <= self.tolerance < 1:
            raise InvalidInputError(f"gate tolerance must be in [0, 1) (0.05 is 5%), got {self.tolerance!r}")
        if not self.time_cap_s > 0:
            raise InvalidInputError(f"gate time_cap_s must be > 0 seconds, got {self.time_cap_s!r}")

    @property
    def enabled(self) -> bool:
        """Whether stages are timed at all."""
        return self.objective != "none"


@dataclass(frozen=True)
class GateVerdict(JsonRecord):
    """What the gate decided for one stage: ``kept``, ``dropped`` or ``unchecked``, and why."""

    decision: str
    reason: str
    latency_ratio: float | None = None


class Gatekeeper:
    """Times models on the gate's device and decides whether a stage stays.

    Args:
        config: the gate settings.
        input_shape: the model input, batch included.
        device: a :class:`slimforge.hardware.devices.Device` to use instead of ``config.device``
            (tests inject a deterministic one).
        seed: seeds the random inputs.
    """

    def __init__(self, config: GateConfig, input_shape: Sequence[int], *, device: Any = None, seed: int = 0) -> None:
        self.config = config
        self.input_shape = tuple(input_shape)
        self.seed = seed
        self._device = device

    @property
    def device(self) -> Any:
        """The device models are timed on (looked up on first use)."""
        if self._device is None:
            from slimforge.hardware.devices import get_device

            self._device = get_device(self.config.device)
        return self._device

    def settings(self) -> GateConfig:
        """The gate's settings with ``device`` naming the device actually used."""
        if self._device is None:
            return self.config
        return dataclasses.replace(self.config, device=self._device.spec)

    def compare(self, models: Sequence[Any], labels: Sequence[str] | None = None) -> Any:
        """:class:`~slimforge.hardware.compare.LatencyComparison` of ``models`` (index 0 the baseline)."""
        from slimforge.hardware.compare import compare_latencies

        return compare_latencies(
            self.device,
            list(models),
            self.input_shape,
            labels=labels,
            threads=self.config.threads,
            rounds=self.config.rounds,
            time_cap_s=self.config.time_cap_s,
            tolerance=self.config.tolerance,
            seed=self.seed,
        )

    def judge(self, stage: Any, before_onnx: Path, after_onnx: Path, before_bytes: int, after_bytes: int) -> GateVerdict:
        """Keep or drop ``stage``, whose model went from ``before_onnx`` to ``after_onnx``."""
        if not self.config.enabled:
            return GateVerdict("unchecked", "no measured gate (objective none)")
        if not (stage.changes_structure or stage.final):
            return GateVerdict("unchecked", "weights only: the exported graph is unchanged")
        cmp = self.compare([before_onnx, after_onnx], ["input", stage.text])
        if not cmp.slower(1):
            return GateVerdict("kept", f"not slower on {cmp.device}: {cmp.describe(1)}", cmp.ratio[1])
        if self.config.objective == "size" and after_bytes < before_bytes:
            return GateVerdict(
                "kept",
                f"SLOWER on {cmp.device}: {cmp.describe(1)}; kept because the objective is size "
                f"({after_bytes:,} B vs {before_bytes:,} B)",
                cmp.ratio[1],
            )
        return GateVerdict(
            "dropped",
            f"slower on {cmp.device}: {cmp.describe(1)}, beyond the {self.config.tolerance:.0%} tolerance; "
            "the stage's input model goes on",
            cmp.ratio[1],
        )
