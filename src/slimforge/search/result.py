"""The result of a search: every distinct evaluation and the feasible non-dominated front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimforge.search.evaluation import Evaluation
from slimforge.search.pareto import pareto_mask

__all__ = ["SearchResult", "feasible_front"]


def feasible_front(evaluations: Sequence[Evaluation]) -> tuple[Evaluation, ...]:
    """The non-dominated feasible evaluations, sorted by objective values (first objective first).

    Infeasible candidates never enter the front; neither do ones with a non-finite objective.
    """
    feasible = [e for e in evaluations if e.feasible and all(np.isfinite(e.vector))]
    if not feasible:
        return ()
    F = np.array([e.vector for e in feasible], dtype=float)
    front = [e for e, keep in zip(feasible, pareto_mask(F)) if keep]
    return tuple(sorted(front, key=lambda e: (e.vector, e.genome)))


@dataclass(frozen=True)
class SearchResult:
    """What :func:`~slimforge.search.minimize` returns.

    Attributes:
        space: registry name of the searched space.
        objectives: objective names (all minimised).
        constraints: hard constraints as strings.
        algorithm: algorithm name.
        settings: the algorithm's settings.
        seed: the seed of the run.
        budget: the maximum number of distinct evaluations.
        evaluations: every distinct (canonical) evaluation in the order it was made.
        front: the feasible non-dominated evaluations, sorted by objectives.
        stop_reason: ``"budget"``, ``"algorithm finished"`` or ``"stalled"`` (no new genome proposed).
        wall_s: wall time of the loop (including evaluations read back from a store).
        oracle_s: summed time of the evaluations made in this call.
        num_resumed: evaluations read back from the run store instead of evaluated.
        num_screened_out: candidates a screen (predictor-assisted search) dropped unevaluated.
    """

    space: str
    objectives: tuple[str, ...]
    constraints: tuple[str, ...]
    algorithm: str
    settings: dict[str, Any]
    seed: int
    budget: int
    evaluations: tuple[Evaluation, ...]
    front: tuple[Evaluation, ...]
    stop_reason: str
    wall_s: float = 0.0
    oracle_s: float = 0.0
    num_resumed: int = 0
    num_screened_out: int = 0

    @property
    def num_evaluations(self) -> int:
        """Distinct evaluations used (what the budget counts)."""
        return len(self.evaluations)

    @property
    def num_feasible(self) -> int:
        """Evaluations that met every hard constraint."""
        return sum(e.feasible for e in self.evaluations)

    @property
    def message(self) -> str:
        """One line on the outcome, e.g. the 'no feasible architecture' case."""
        if not self.front:
            return f"no feasible architecture found after {self.num_evaluations} evaluations"
        return (
            f"{len(self.front)} non-dominated architecture(s) from {self.num_evaluations} evaluations "
            f"({self.num_feasible} feasible); stopped: {self.stop_reason}"
        )

    def front_matrix(self) -> np.ndarray:
        """Objective values of the front, one row per architecture."""
        return np.array([e.vector for e in self.front], dtype=float).reshape(
            len(self.front), len(self.objectives)
        )

    def to_dict(self, *, include_evaluations: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (``include_evaluations=False`` keeps only the front)."""
        out = {
            "space": self.space,
            "objectives": list(self.objectives),
            "constraints": list(self.constraints),
            "algorithm": self.algorithm,
            "settings": dict(self.settings),
            "seed": self.seed,
            "budget": self.budget,
            "num_evaluations": self.num_evaluations,
            "num_feasible": self.num_feasible,
            "stop_reason": self.stop_reason,
            "message": self.message,
            "wall_s": self.wall_s,
            "oracle_s": self.oracle_s,
            "num_resumed": self.num_resumed,
            "num_screened_out": self.num_screened_out,
            "front": [e.to_dict() for e in self.front],
        }
        if include_evaluations:
            out["evaluations"] = [e.to_dict() for e in self.evaluations]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """Inverse of :meth:`to_dict` (a dict without evaluations gets the front as its evaluations)."""
        front = tuple(Evaluation.from_dict(e) for e in data["front"])
        evaluations = tuple(Evaluation.from_dict(e) for e in data.get("evaluations", [])) or front
        return cls(
            space=str(data["space"]),
            objectives=tuple(data["objectives"]),
            constraints=tuple(data["constraints"]),
            algorithm=str(data["algorithm"]),
            settings=dict(data["settings"]),
            seed=int(data["seed"]),
            budget=int(data["budget"]),
            evaluations=evaluations,
            front=front,
            stop_reason=str(data["stop_reason"]),
            wall_s=float(data.get("wall_s", 0.0)),
            oracle_s=float(data.get("oracle_s", 0.0)),
            num_resumed=int(data.get("num_resumed", 0)),
            num_screened_out=int(data.get("num_screened_out", 0)),
        )
