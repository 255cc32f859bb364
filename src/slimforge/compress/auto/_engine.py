"""The one policy-search engine behind ``auto_prune``, ``auto_bits`` and ``joint_search``.

Every automated compression search follows one outline: check the budget and the settings before any
work; build the policy space and the problem (estimated error, the budget's cost, the budget as a
hard constraint); refuse a budget even the cheapest policy misses, naming the smallest reachable
value (:class:`BudgetUnreachableError`); search with slimforge's multi-objective engine
(:func:`slimforge.search.minimize`, NSGA-II by default); take the best feasible policy; fill what it
leaves of the budget (:func:`fill_budget`, when the task can); measure the estimate's noise on it;
finetune it and the baselines identically and measure them; write the record. What differs between
pruning, mixed precision and the joint search is a :class:`PolicyTask`: its ``_setup`` hook builds
the space and the problem, ``fill`` and ``noise`` are optional hooks, its ``_finish`` hook builds
the final models, the baselines and the record. :func:`run_task` is the outline.
"""

from __future__ import annotations

import json
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from slimforge.compress.auto._budget import Budget, parse_budget
from slimforge.compress.auto._estimate import EstimateNoise
from slimforge.compress.auto._fill import FillResult
from slimforge.compress.auto._results import PolicyPoint, Reranked
from slimforge.compress.auto._settings import EstimateConfig, SearchSettings, check_count
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.spaces import Genome

__all__ = [
    "BudgetUnreachableError",
    "Finished",
    "Found",
    "PolicyTask",
    "SavedModel",
    "SearchSetup",
    "budget_problem",
    "check_algorithm",
    "closest",
    "front_points",
    "run_search",
    "run_task",
    "search_message",
    "search_settings",
]


class BudgetUnreachableError(InvalidInputError):
    """A budget that even the cheapest policy of the space misses; the message names the smallest reachable one."""


@dataclass(frozen=True, eq=False)
class SearchSetup:
    """What a task's ``_setup`` hands the engine.

    Args:
        problem: the :class:`slimforge.search.Problem` (objectives ``error`` and ``metric``, the bound
            as a constraint); None when the budget is out of reach (the engine then refuses it).
        metric: the budget's metric (``macs``, ``latency_ms``, ``bytes``, ``bitops``).
        bound: the absolute bound on ``metric``.
        reference: the cost a fraction budget is a fraction of (the original's, the reference network's).
        smallest: the cheapest policy of the space.
        smallest_cost: its ``metric``.
        smallest_text: the cheapest policy in words ("every group at ratio 0.8").
        context: the task's own state for its hooks (the loaded model, data, space).
    """

    problem: Any
    metric: str
    bound: float
    reference: float
    smallest: Genome
    smallest_cost: float
    smallest_text: str
    context: Any = None


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A final model to save as ``out/<name>/`` (reload with :func:`slimforge.io.load_model`).

    ``base_config`` rebuilds the model compression started from; ``history`` names what was done
    to it (written into the ``compressed`` config).
    """

    name: str
    model: Any
    base_config: Mapping[str, Any]
    history: tuple[str, ...]
    input_shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Finished:
    """What a task's ``_finish`` returns: the record and the models to save."""

    record: JsonRecord
    models: tuple[SavedModel, ...] = ()


@dataclass(frozen=True, eq=False)
class Found:
    """What the search found: the chosen evaluation and how the search went.

    ``searches`` maps a name to each :class:`slimforge.search.SearchResult` (written to
    ``searches.json``; a task's ``_finish`` adds the searches of its baselines there, as the joint
    search does); ``started`` is the ``time.perf_counter()`` at which the search began.
    """

    chosen: Any
    message: str
    num_evaluations: int
    num_feasible: int
    front: tuple[PolicyPoint, ...]
    started: float
    searches: dict[str, Any] = field(default_factory=dict)
    #: what budget filling did (None: not filled); ``chosen`` is then the filled policy.
    fill: FillResult | None = None
    #: the chosen policy's estimate repeated with other image draws (None: not measured).
    noise: EstimateNoise | None = None
    #: the best candidates re-ranked after filling (empty: not re-ranked).
    reranked: tuple[Reranked, ...] = ()

    @property
    def search_s(self) -> float:
        """Seconds since the search began."""
        return time.perf_counter() - self.started

    def record_fields(self, settings: SearchSettings, *, refined: bool = True) -> dict[str, Any]:
        """The fields every policy search's record holds: its settings, its effort (``search_s`` up to
        now) and its front; with ``refined``, also what filling, the noise measurement and re-ranking did."""
        fields = {
            "algorithm": settings.algorithm,
            "search_budget": settings.search_budget,
            "num_evaluations": self.num_evaluations,
            "num_feasible": self.num_feasible,
            "search_s": self.search_s,
            "seed": settings.seed,
            "front": self.front,
            "finetune_epochs": settings.finetune_epochs,
        }
        if refined:
            fields.update(fill=self.fill, estimate_noise=self.noise, reranked=self.reranked)
        return fields


class PolicyTask(ABC):
    """One kind of policy search (prune, bits, joint): the engine's hooks.

    Subclasses set the class attributes and implement :meth:`_setup` (load, build the space and the
    problem), :meth:`_finish` (final models, baselines, the record) and :meth:`format` (the text
    table); :meth:`fill` and :meth:`noise` are optional.
    """

    #: the result's file name (``auto_prune`` -> ``auto_prune.json``, ``auto_prune.txt``).
    result_name: ClassVar[str]
    #: the budget keys the search takes.
    budget_keys: ClassVar[tuple[str, ...]]
    #: the search in words, for errors ("the pruning policy search").
    what: ClassVar[str]
    #: the name of the main search in ``searches.json``.
    search_key: ClassVar[str] = "policy"
    #: what one candidate is called in messages.
    noun: ClassVar[str] = "policies"
    #: the budget key a bare number (``--budget 0.7``) stands for.
    default_key: ClassVar[str | None] = None

    def setup(self, budget: Budget, settings: SearchSettings) -> SearchSetup:
        """Build the search's space and problem under ``budget``."""
        setup = self._setup(budget, settings)
        if setup.metric != budget.metric:
            raise InvalidInputError(f"{self.what} built a problem on {setup.metric}, not {budget.metric}")
        return setup

    @abstractmethod
    def _setup(self, budget: Budget, settings: SearchSettings) -> SearchSetup:
        """Hook: load the model and data, build the space, the evaluator and the problem."""

    def fill(self, setup: SearchSetup, genome: Genome) -> tuple[Genome, FillResult] | None:
        """Spend what ``genome`` leaves of the budget (:func:`fill_budget`); None: the task does not fill."""
        return None

    def noise(
        self, setup: SearchSetup, genome: Genome, repeats: int, estimate: EstimateConfig
    ) -> EstimateNoise | None:
        """``estimate`` of ``genome`` repeated ``repeats`` times with other image draws; None: not measured."""
        return None

    def score(self, setup: SearchSetup, genome: Genome, estimate: EstimateConfig) -> float | None:
        """``genome`` scored by another estimate (to re-rank the best candidates); None: not supported."""
        return None

    @abstractmethod
    def _finish(self, setup: SearchSetup, found: Found, settings: SearchSettings) -> Finished:
        """Hook: build, finetune and measure the final models and baselines; return the record."""

    def finish(self, setup: SearchSetup, found: Found, settings: SearchSettings) -> Finished:
        """The search's record and final models (:meth:`_finish`)."""
        finished = self._finish(setup, found, settings)
        if not isinstance(finished, Finished):
            raise TypeError(
                f"{type(self).__name__}._finish must return a Finished, got {type(finished).__name__}"
            )
        return finished

    @abstractmethod
    def format(self, record: JsonRecord) -> str:
        """The record as the text table the CLI prints."""


def budget_problem(space: Any, evaluator: Any, metric: str, bound: float) -> Any:
    """The search's problem: minimise the estimated error and ``metric``, with ``metric <= bound`` a hard constraint."""
    from slimforge.search import Constraint, Problem

    return Problem(space, ("error", metric), [evaluator], [Constraint(metric, "<=", bound)])


def check_algorithm(algorithm: str) -> str:
    """``algorithm`` if :data:`slimforge.search.ALGORITHMS` has it (checked before any work starts)."""
    from slimforge.search.algorithms import ALGORITHMS

    ALGORITHMS.get(algorithm)  # an unknown name raises with close matches
    return algorithm


def check_out_dir(out_dir: str | Path | None, overwrite: bool) -> Path | None:
    """``out_dir`` as a Path, refusing a non-empty one unless ``overwrite`` (then it is emptied)."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InvalidInputError(
                f"{out} already exists and is not empty; choose another --out or pass --overwrite"
            )
        shutil.rmtree(out)
    return out


def search_settings(
    algorithm: str, budget: int, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Algorithm settings scaled to a small evaluation budget (a policy evaluation costs seconds).

    The engine's defaults (a population of 50, 50 children per generation) would spend a budget of
    40 on the initial sample alone; here the population is about a quarter of the budget (4 to 50)
    so that several generations run. ``overrides`` win.
    """
    from slimforge.search.algorithms import ALGORITHMS, setting_names

    if not isinstance(algorithm, str):
        return dict(overrides or {})
    accepted = setting_names(ALGORITHMS.get(algorithm)) or set()
    pop = max(4, min(50, budget // 4))
    proposal = {
        "pop_size": pop,
        "iterations": None,
        "n_parents": max(2, pop // 2),
        "n_crossover": max(1, (2 * pop) // 5),
        "n_mutation": max(1, pop // 2),
        "n_random": max(1, pop - (2 * pop) // 5 - pop // 2),
        "population_size": max(2, pop),
        "sample_size": max(1, pop // 3),
        "n_init": pop,
        "batch_size": max(1, pop // 2),
    }
    settings = {k: v for k, v in proposal.items() if k in accepted}
    settings.update(overrides or {})
    return settings


def run_search(problem: Any, settings: SearchSettings, *, progress: bool = False) -> Any:
    """:func:`slimforge.search.minimize` with :func:`search_settings` (in-process: evaluators hold models)."""
    from slimforge.search import minimize

    budget = min(check_count("search budget", settings.search_budget, 1), problem.space.size)
    return minimize(
        problem,
        settings.algorithm,
        budget=budget,
        seed=settings.seed,
        settings=search_settings(settings.algorithm, budget, settings.algorithm_settings),
        progress=progress,
    )


def front_points(result: Any, cost: str) -> tuple[PolicyPoint, ...]:
    """The feasible non-dominated policies of a search result, cheapest first."""
    points = [
        PolicyPoint(e.arch, e.objectives["error"], e.objectives[cost], e.feasible) for e in result.front
    ]
    return tuple(sorted(points, key=lambda p: (p.cost, p.error)))


def search_message(result: Any, metric: str, bound: float, what: str = "policies") -> str:
    """One line on the search: how many candidates met the bound, or that none did."""
    if not result.num_feasible:
        return (
            f"no {what} within {metric} <= {bound:.4g} found in {result.num_evaluations} evaluations; "
            "showing the closest (raise --search-budget)"
        )
    return (
        f"best of {result.num_feasible} feasible {what} out of {result.num_evaluations} "
        f"({metric} <= {bound:.4g})"
    )


def closest(result: Any, metric: str) -> Any:
    """The best feasible evaluation (lowest error, then lowest cost), or the least violating one."""
    feasible = [e for e in result.evaluations if e.feasible]
    if feasible:
        return min(feasible, key=lambda e: (e.metrics["error"], e.metrics[metric]))
    return min(result.evaluations, key=lambda e: (e.violation, e.metrics["error"]))


def _write(out: Path, task: PolicyTask, finished: Finished, searches: Mapping[str, Any]) -> None:
    from slimforge.compress._rebuild import save_compressed
    from slimforge.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{task.result_name}.json", finished.record.to_json() + "\n")
    atomic_write_text(out / f"{task.result_name}.txt", task.format(finished.record) + "\n")
    doc = {k: v.to_dict(include_evaluations=True) for k, v in searches.items()}
    atomic_write_text(out / "searches.json", json.dumps(doc, indent=2) + "\n")
    for m in finished.models:
        save_compressed(m.model, m.base_config, m.history, m.input_shape, out / m.name)


def _choose(
    task: PolicyTask, setup: SearchSetup, result: Any, settings: SearchSettings
) -> tuple[Any, FillResult | None, list[Reranked]]:
    """The policy the search ends with: the best feasible one, filled; or with ``settings.rerank`` the
    best of the top few feasible ones, each filled first, by the re-ranking estimate."""
    best = closest(result, setup.metric)
    if not best.feasible:
        return best, None, []
    feasible = sorted(
        (e for e in result.evaluations if e.feasible),
        key=lambda e: (e.metrics["error"], e.metrics[setup.metric]),
    )
    pool = feasible[: max(1, settings.rerank)]
    outcomes = []
    for e in pool:
        filled = task.fill(setup, e.genome) if settings.fill else None
        genome = e.genome if filled is None else filled[0]
        score = task.score(setup, genome, settings.rerank_estimate) if settings.rerank else None
        outcomes.append((e, genome, None if filled is None else filled[1], score))
    reranked = [
        Reranked(
            setup.problem.space.to_string(g),
            100.0 - e.metrics["error"],
            s,
            f.cost_after if f else e.metrics[setup.metric],
        )
        for e, g, f, s in outcomes
        if s is not None
    ]
    pick = max(outcomes, key=lambda o: o[3]) if reranked else outcomes[0]
    e, genome, filled, _ = pick
    # A fresh evaluation of a filled policy (not counted in the search budget).
    chosen = e if genome == e.genome else setup.problem.evaluate(genome)
    return chosen, filled if genome != e.genome else None, reranked


def run_task(
    task: PolicyTask,
    budget: str | Budget,
    settings: SearchSettings,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> JsonRecord:
    """Run one policy search from budget to record (the outline every kind shares; see the module doc).

    Raises:
        BudgetUnreachableError: even the cheapest policy misses ``budget`` (before any search).

    ``out_dir`` gets ``<result_name>.json``, ``<result_name>.txt``, ``searches.json`` (every
    evaluation) and what the task saves; None writes nothing.
    """
    budget = parse_budget(budget, task.budget_keys, what=task.what, default_key=task.default_key)
    check_algorithm(settings.algorithm)
    out = check_out_dir(out_dir, overwrite)
    setup = task.setup(budget, settings)
    if setup.problem is None or setup.smallest_cost > setup.bound:
        raise BudgetUnreachableError(
            f"budget {budget.text} cannot be met: {setup.smallest_text} has {setup.metric} "
            f"{setup.smallest_cost:.4g} > {setup.bound:.4g}; the smallest reachable budget is "
            f"{budget.reachable(setup.smallest_cost, setup.reference)}"
        )
    started = time.perf_counter()
    result = run_search(setup.problem, settings, progress=progress)
    chosen, filled, reranked = _choose(task, setup, result, settings)
    message = search_message(result, setup.metric, setup.bound, task.noun)
    if reranked:
        message += f"; the best {len(reranked)} filled, then re-ranked by the second estimate"
    if filled is not None:
        message += f"; filled to {setup.metric} {filled.cost_after:.4g} ({len(filled.steps)} step(s))"
    estimate = settings.rerank_estimate if reranked else settings.estimate
    repeats = settings.noise_repeats
    noise = task.noise(setup, chosen.genome, repeats, estimate) if repeats else None
    found = Found(
        chosen=chosen,
        message=message,
        num_evaluations=result.num_evaluations,
        num_feasible=result.num_feasible,
        front=front_points(result, setup.metric),
        started=started,
        searches={task.search_key: result},
        fill=filled,
        noise=noise,
        reranked=tuple(reranked),
    )
    finished = task.finish(setup, found, settings)
    if out is not None:
        _write(out, task, finished, found.searches)
    return finished.record
