"""The evaluation of one candidate: what the engine stores and what an algorithm is told."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slimforge.spaces import Genome

__all__ = ["Evaluation"]


@dataclass(frozen=True)
class Evaluation:
    """One evaluated (canonical) genome.

    Attributes:
        genome: the canonical genome that was evaluated.
        arch: its string in the space's standard notation.
        objectives: objective name -> value, in the problem's order; all minimised.
        constraints: constraint expression (``"latency_ms <= 5"``) -> value of its metric.
        violation: total normalised constraint violation; 0 exactly when ``feasible``.
        feasible: every hard constraint holds (and no objective is NaN).
        seconds: wall time of the evaluation itself (the oracle's time, not the engine's).
        metrics: every metric the evaluators returned, objectives or not (e.g. ``accuracy``).
    """

    genome: Genome
    arch: str
    objectives: dict[str, float]
    constraints: dict[str, float] = field(default_factory=dict)
    violation: float = 0.0
    feasible: bool = True
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def vector(self) -> tuple[float, ...]:
        """Objective values in the problem's order."""
        return tuple(self.objectives.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "genome": list(self.genome),
            "arch": self.arch,
            "objectives": dict(self.objectives),
            "constraints": dict(self.constraints),
            "violation": self.violation,
            "feasible": self.feasible,
            "seconds": self.seconds,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            genome=tuple(int(g) for g in data["genome"]),
            arch=str(data["arch"]),
            objectives={str(k): float(v) for k, v in data["objectives"].items()},
            constraints={str(k): float(v) for k, v in data.get("constraints", {}).items()},
            violation=float(data.get("violation", 0.0)),
            feasible=bool(data.get("feasible", True)),
            seconds=float(data.get("seconds", 0.0)),
            metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
        )
