"""The tabular benchmark: run a search algorithm against a table oracle and score what it finds.

Protocol (stated in every result, ``TabularBenchmark.protocol``):

* The oracle answers a genome with the table row of its *canonical* genome: the engine
  canonicalises every candidate before evaluating it, so rows of the same network under
  another genome are never asked for. The *true front* is therefore the non-dominated set of
  the canonical rows (one row per distinct network), and a true-front network counts as found
  when it was evaluated.
* Objectives are min-max normalised over the whole table (every row); the hypervolume
  reference point is the per-objective median of the normalised table, so only the better half
  of each objective counts. ``hv_ratio`` = HV(found non-dominated set) / HV(true front).
* ``igd_plus`` is IGD+ of the found set to the true front in the same normalised space.
* For comparison with figures computed over every row, ``hv_ratio_all_rows`` and
  ``front_recall_all_rows`` use the front of all rows instead (a row counts as found when its
  canonical genome was evaluated); rows that only a non-canonical genome reaches cap them below 1.
* ``overhead_ms_per_eval`` = (wall time - oracle time) / evaluations: the engine's own cost.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms import ALGORITHMS, make_algorithm, setting_names
from slimforge.search.indicators import hypervolume, igd_plus, normalise
from slimforge.search.minimize import minimize
from slimforge.search.pareto import pareto_mask
from slimforge.search.problem import Problem, build_problem, parse_names
from slimforge.search.result import SearchResult
from slimforge.search.selection import knee_point
from slimforge.spaces import Genome

__all__ = ["BenchmarkRun", "TabularBenchmark", "TabularTruth", "run_tabular_benchmark", "tabular_truth"]

PROTOCOL = (
    "oracle = table row of the candidate's canonical genome; true front = non-dominated canonical rows; "
    "objectives min-max normalised over all rows; HV reference point = per-objective median of the "
    "normalised table; *_all_rows = same scores against the front of all rows"
)


@dataclass(frozen=True)
class TabularTruth:
    """Everything the scores compare against, computed once per table pair.

    Attributes:
        objectives: objective names.
        lower / upper: per-objective minimum and maximum over all rows (normalisation).
        ref_point: per-objective median of the normalised table.
        num_rows / num_distinct: table rows and distinct (canonical) networks.
        front: canonical genomes of the true front (over canonical rows).
        front_norm: their normalised objective values.
        hv: hypervolume of the true front.
        front_all_rows: genomes of the front over all rows; ``hv_all_rows`` its hypervolume.
        metric_lower: every metric's smallest value over all rows (e.g. the cheapest network's
            latency, which an RL controller's latency target must not undercut).
    """

    objectives: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    ref_point: np.ndarray
    num_rows: int
    num_distinct: int
    front: tuple[Genome, ...]
    front_norm: np.ndarray
    hv: float
    front_all_rows: tuple[Genome, ...]
    front_all_rows_canonical: tuple[Genome, ...]
    hv_all_rows: float
    metric_lower: dict[str, float] = field(default_factory=dict)


def tabular_truth(problem: Problem) -> TabularTruth:
    """Evaluate every genome of the problem's space and derive the true front and normalisation."""
    space = problem.space
    genomes = list(itertools.product(*(range(n) for n in space.num_choices)))
    objectives = problem.objectives
    rows = [problem.metrics(g) for g in genomes]
    F = np.array([[m[o] for o in objectives] for m in rows], dtype=float)
    metric_lower: dict[str, float] = {}
    for m in rows:
        for name, value in m.items():
            if not np.isnan(value) and value < metric_lower.get(name, np.inf):
                metric_lower[name] = float(value)
    canonical = [space.canonical(g) for g in genomes]
    is_canonical = np.array([c == g for c, g in zip(canonical, genomes)])
    lower, upper = F.min(axis=0), F.max(axis=0)
    norm = normalise(F, lower, upper)
    ref = np.median(norm, axis=0)
    idx = np.flatnonzero(is_canonical)
    front_idx = idx[pareto_mask(F[idx])]
    all_idx = np.flatnonzero(pareto_mask(F))
    return TabularTruth(
        objectives=problem.objectives,
        lower=lower,
        upper=upper,
        ref_point=ref,
        num_rows=len(genomes),
        num_distinct=int(is_canonical.sum()),
        front=tuple(genomes[i] for i in front_idx),
        front_norm=norm[front_idx],
        hv=hypervolume(norm[front_idx], ref),
        front_all_rows=tuple(genomes[i] for i in all_idx),
        front_all_rows_canonical=tuple(canonical[i] for i in all_idx),
        hv_all_rows=hypervolume(norm[all_idx], ref),
        metric_lower=metric_lower,
    )


@dataclass(frozen=True)
class BenchmarkRun:
    """Scores of one seed's run."""

    seed: int
    hv_ratio: float
    front_recall: float
    igd_plus: float
    hv_ratio_all_rows: float
    front_recall_all_rows: float
    num_evaluations: int
    wall_s: float
    oracle_s: float
    overhead_ms_per_eval: float
    stop_reason: str
    found: tuple[dict[str, Any], ...]
    knee: dict[str, Any] | None
    #: hv_ratio of the first k evaluations, per checkpoint k (an algorithm is not told its budget,
    #: so these are the scores of runs with budget k).
    hv_ratio_at: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            **self.__dict__,
            "found": [dict(f) for f in self.found],
            "hv_ratio_at": {str(k): v for k, v in self.hv_ratio_at.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkRun:
        """Inverse of :meth:`to_dict`."""
        at = {int(k): float(v) for k, v in data.get("hv_ratio_at", {}).items()}
        return cls(**{**data, "found": tuple(data["found"]), "hv_ratio_at": at})


_SCORES = (
    "hv_ratio",
    "front_recall",
    "igd_plus",
    "hv_ratio_all_rows",
    "front_recall_all_rows",
    "num_evaluations",
    "wall_s",
    "overhead_ms_per_eval",
)


@dataclass(frozen=True)
class TabularBenchmark:
    """Result of :func:`run_tabular_benchmark`: per-seed runs and their median / min / max."""

    accuracy_table: str
    device_table: str
    objectives: tuple[str, ...]
    algorithm: str
    settings: dict[str, Any]
    budget: int
    seeds: tuple[int, ...]
    num_rows: int
    num_distinct: int
    true_front_size: int
    protocol: str
    runs: tuple[BenchmarkRun, ...]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    #: what the algorithm says about a run of this budget (e.g. WSEA: calibration ate it whole)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = {k: v for k, v in self.__dict__.items() if k != "runs"}
        out["objectives"] = list(self.objectives)
        out["seeds"] = list(self.seeds)
        out["runs"] = [r.to_dict() for r in self.runs]
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TabularBenchmark:
        """Inverse of :meth:`to_dict`."""
        return cls(
            **{
                **data,
                "objectives": tuple(data["objectives"]),
                "seeds": tuple(data["seeds"]),
                "runs": tuple(BenchmarkRun.from_dict(r) for r in data["runs"]),
                "notes": tuple(data.get("notes", ())),
            }
        )


def load_tabular_problem(
    accuracy: str | os.PathLike,
    device: str | os.PathLike,
    objectives: str | Sequence[str] = ("error", "latency_ms"),
) -> Problem:
    """The NB201 problem whose oracle is the two tables; they must agree on index -> architecture."""
    problem = build_problem(
        "nb201", parse_names(objectives), accuracy_table=accuracy, device=f"table:{device}"
    )
    tables = [ev.table for ev in problem.evaluators if hasattr(ev, "table")]
    if len(tables) == 2:
        a, b = (t.index_of() for t in tables)
        clash = next((i for i in a if i in b and a[i] != b[i]), None)
        if clash is not None:
            raise InvalidInputError(
                f"{tables[0].path} and {tables[1].path} disagree on index {clash} "
                f"({problem.space.to_string(a[clash])} vs {problem.space.to_string(b[clash])}); "
                "give tables of the same benchmark"
            )
    return problem


def run_tabular_benchmark(
    accuracy: str | os.PathLike,
    device: str | os.PathLike,
    *,
    objectives: str | Sequence[str] = ("error", "latency_ms"),
    algorithm: str = "nsga2",
    budget: int = 1000,
    seed: int = 0,
    repeats: int = 1,
    settings: Mapping[str, Any] | None = None,
    problem: Problem | None = None,
    truth: TabularTruth | None = None,
    checkpoints: Sequence[int] = (),
) -> TabularBenchmark:
    """Run ``algorithm`` on seeds ``seed .. seed+repeats-1`` with the tables as oracle and score it.

    Args:
        accuracy: accuracy table (``index,arch,accuracy``).
        device: device table (``index,arch,latency_ms,energy_mj``).
        objectives: objective names (``error``, ``latency_ms``, ``energy_mj``).
        algorithm: registry name of the algorithm.
        budget: distinct evaluations per run (at most the table's distinct networks).
        seed: first seed.
        repeats: number of seeds.
        settings: algorithm settings; by default the algorithm's own, except that the
            generational GAs run until the budget is spent (``iterations=None``).
        problem / truth: reuse an already-loaded problem and its truth (several algorithms).
        checkpoints: evaluation counts below ``budget`` at which each run's hv_ratio is also
            scored (``hv_ratio_at``; summary keys ``hv_ratio@K``).

    Raises:
        InvalidInputError: bad counts, or a run the algorithm refuses before evaluating anything
            (:meth:`~slimforge.search.algorithms.Algorithm.check_run`: a BO budget below its
            initial design, an RL latency target below the table's cheapest network).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidInputError(f"repeats must be a positive int, got {repeats!r}")
    if problem is None:
        problem = load_tabular_problem(accuracy, device, objectives)
    if truth is None:
        truth = tabular_truth(problem)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise InvalidInputError(f"budget must be a positive number of evaluations, got {budget!r}")
    if budget > truth.num_distinct:
        raise InvalidInputError(
            f"budget {budget:,} exceeds the {truth.num_distinct:,} distinct networks of the table "
            f"({truth.num_rows:,} rows); lower it"
        )
    checkpoints = sorted({_check_checkpoint(k, budget) for k in checkpoints})
    settings = default_settings(algorithm) if settings is None else dict(settings)
    probe = make_algorithm(algorithm, problem.space, seed=seed, **settings)
    probe.check_run(budget=budget, lower_bounds=truth.metric_lower)
    notes = tuple(probe.run_notes(budget=budget))
    runs = []
    for s in range(seed, seed + repeats):
        result = minimize(problem, algorithm, budget=budget, seed=s, settings=settings)
        runs.append(score_run(result, truth, checkpoints))
    summary = {}
    columns = {key: [getattr(r, key) for r in runs] for key in _SCORES}
    columns |= {f"hv_ratio@{k}": [r.hv_ratio_at[k] for r in runs] for k in checkpoints}
    for key, column in columns.items():
        values = np.array(column, dtype=float)
        summary[key] = {
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return TabularBenchmark(
        accuracy_table=str(accuracy),
        device_table=str(device),
        objectives=tuple(problem.objectives),
        algorithm=algorithm,
        settings=settings,
        budget=budget,
        seeds=tuple(range(seed, seed + repeats)),
        num_rows=truth.num_rows,
        num_distinct=truth.num_distinct,
        true_front_size=len(truth.front),
        protocol=PROTOCOL,
        runs=tuple(runs),
        summary=summary,
        notes=notes,
    )


def default_settings(algorithm: str) -> dict[str, Any]:
    """The benchmark's settings: the algorithm's defaults, run until the budget is spent."""
    names = setting_names(ALGORITHMS.get(algorithm)) or set()
    return {"iterations": None} if "iterations" in names else {}


def _check_checkpoint(k: Any, budget: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= budget:
        raise InvalidInputError(f"checkpoint {k!r} must be an evaluation count in [1, budget={budget}]")
    return int(k)


def _hv_of_first(result: SearchResult, k: int, truth: TabularTruth) -> float:
    """hv_ratio of the feasible non-dominated set of the first ``k`` evaluations."""
    rows = [e.vector for e in result.evaluations[:k] if e.feasible and np.all(np.isfinite(e.vector))]
    if not rows or truth.hv <= 0:
        return 0.0 if truth.hv > 0 else float("nan")
    norm = normalise(np.array(rows, dtype=float), truth.lower, truth.upper)
    return hypervolume(norm[pareto_mask(norm)], truth.ref_point) / truth.hv


def score_run(result: SearchResult, truth: TabularTruth, checkpoints: Sequence[int] = ()) -> BenchmarkRun:
    """Score one search result against the truth (and its first ``k`` evaluations per checkpoint)."""
    found_F = result.front_matrix()
    norm = normalise(found_F, truth.lower, truth.upper) if len(found_F) else found_F
    hv = hypervolume(norm, truth.ref_point) if len(norm) else 0.0
    evaluated = {e.genome for e in result.evaluations}
    recall = sum(g in evaluated for g in truth.front) / len(truth.front)
    recall_all = sum(g in evaluated for g in truth.front_all_rows_canonical) / len(truth.front_all_rows)
    knee = knee_point(result.front)
    wall = result.wall_s
    return BenchmarkRun(
        seed=result.seed,
        hv_ratio=hv / truth.hv if truth.hv > 0 else float("nan"),
        front_recall=recall,
        igd_plus=igd_plus(norm, truth.front_norm) if len(norm) else float("inf"),
        hv_ratio_all_rows=hv / truth.hv_all_rows if truth.hv_all_rows > 0 else float("nan"),
        front_recall_all_rows=recall_all,
        num_evaluations=result.num_evaluations,
        wall_s=wall,
        oracle_s=result.oracle_s,
        overhead_ms_per_eval=1000.0 * (wall - result.oracle_s) / max(1, result.num_evaluations),
        stop_reason=result.stop_reason,
        found=tuple({"arch": e.arch, **e.objectives} for e in result.front),
        knee=None if knee is None else {"arch": knee.arch, **knee.metrics},
        hv_ratio_at={int(k): _hv_of_first(result, int(k), truth) for k in checkpoints},
    )
