"""The convenience loop: ask, canonicalise, evaluate what is new, store, tell.

The budget counts distinct evaluations: every asked genome is mapped to its canonical form,
and a canonical genome evaluated before is answered from memory. Each evaluation is written to
the run store as it is made. A resumed run replays the same algorithm with the same seed and
answers every genome found in the store from it, so it re-evaluates nothing and ends exactly
where an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.io import DirectoryLock, LockedError
from slimforge.search.algorithms import Algorithm, make_algorithm
from slimforge.search.evaluation import Evaluation
from slimforge.search.problem import Problem
from slimforge.search.progress import FixedHypervolume, SearchProgress, TqdmProgress
from slimforge.search.result import SearchResult, feasible_front
from slimforge.search.termination import SearchState, Termination, default_termination
from slimforge.spaces import Genome

__all__ = ["minimize"]

_META_KEY = "search"


def minimize(
    problem: Problem,
    algorithm: str | Callable[..., Algorithm] = "nsga2",
    *,
    budget: int,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    store: Any = None,
    executor: Any = None,
    resume: bool = False,
    progress: bool | Callable[[SearchProgress], None] = False,
    screen: Any = None,
    screen_keep: float = 0.5,
    termination: Termination | None = None,
) -> SearchResult:
    """Search ``problem`` with ``algorithm`` for at most ``budget`` distinct evaluations.

    Args:
        problem: space, objectives, constraints and evaluators.
        algorithm: a registry name (``"nsga2"``) or a factory ``f(space, seed=..., **settings)``.
        budget: maximum number of distinct (canonical) evaluations.
        seed: seed of the algorithm; the same seed gives the same result on every executor.
        settings: algorithm settings (``{"pop_size": 20}``).
        store: a run store (:class:`~slimforge.io.RunStore`: ``put_evaluation``,
            ``evaluations``, ``get_meta`` / ``set_meta``); every evaluation is written to it.
        executor: None (evaluate here, one by one), an executor name, or an executor object
            with ``map(fn, items)``; a name's executor is closed at the end.
        resume: continue the search recorded in ``store`` (same problem, algorithm, settings
            and seed); without it a store that already holds a search is refused.
        progress: True for a progress bar on stderr, or a callable taking :class:`SearchProgress`.
        screen: predictor-assisted search: a cheap evaluator (a fitted accuracy predictor, a
            zero-cost proxy) whose first metric (minimised) ranks each round's new candidates;
            only the best ``screen_keep`` share of them is evaluated, the rest is dropped
            unevaluated (and never offered again). None evaluates every candidate.
        screen_keep: share of each round's new candidates that the screen lets through, in (0, 1].
        termination: a further reason to stop (e.g. :class:`~slimforge.search.termination.MaxSeconds`);
            the budget, the algorithm finishing and a stalled search always stop it.
    """
    space = problem.space
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InvalidInputError(f"budget must be a positive number of evaluations, got {budget!r}")
    if budget > space.size:
        raise InvalidInputError(
            f"budget {budget:,} exceeds the {space.size:,} architectures of the {space.name} space; lower it"
        )
    if screen is not None and not (isinstance(screen_keep, (int, float)) and 0 < screen_keep <= 1):
        raise InvalidInputError(f"screen_keep must lie in (0, 1], got {screen_keep!r}")
    algo = make_algorithm(algorithm, space, seed=seed, **dict(settings or {}))
    name = algorithm if isinstance(algorithm, str) else algo.name or type(algo).__name__
    run_meta = _jsonable(
        {"problem": problem.describe(), "algorithm": name, "settings": algo.settings(), "seed": int(seed)}
        | ({} if screen is None else {"screen": screen.describe(), "screen_keep": float(screen_keep)})
    )
    # One process owns a store for the whole search: a second search (or resume) into it would
    # evaluate the same candidates again and interleave its rows with this one's.
    with _store_owner(store):
        stored = _open_store(store, problem, run_meta, resume)

        own_executor = isinstance(executor, str)
        if own_executor:
            from slimforge.search.executors import make_executor

            executor = make_executor(executor)
        report = TqdmProgress(budget, desc=f"{name}") if progress is True else (progress or None)
        hv = FixedHypervolume()

        cache: dict[Genome, Evaluation] = {}
        screened_out: set[Genome] = set()
        made: list[Evaluation] = []
        oracle_s = 0.0
        resumed = 0
        stalled = 0
        stop = "budget"
        start = time.perf_counter()
        until = default_termination(int(budget), termination)
        try:
            while True:
                state = SearchState(len(made), stalled, algo.done, time.perf_counter() - start)
                reason = until.stop_reason(state)
                if reason is not None:
                    stop = reason
                    break
                asked = algo.ask()
                if not asked:
                    stop = "algorithm finished"
                    break
                canonical = [space.canonical(g) for g in asked]
                new = list(dict.fromkeys(g for g in canonical if g not in cache and g not in screened_out))
                if screen is not None:
                    new, dropped = _screen(screen, new, screen_keep)
                    screened_out.update(dropped)
                new = new[: budget - len(made)]
                todo = [g for g in new if g not in stored]
                fresh = _evaluate(problem, todo, executor, store)
                for g in new:
                    if g in fresh:
                        evaluation = fresh[g]
                        oracle_s += evaluation.seconds
                    else:
                        evaluation = stored[g]
                        resumed += 1
                    cache[g] = evaluation
                    made.append(evaluation)
                algo.tell([cache[g] for g in canonical if g in cache])
                if report is not None:
                    _report(report, made, budget, hv)
                stalled = 0 if new else stalled + 1
        finally:
            if own_executor:
                executor.close()
            if isinstance(report, TqdmProgress):
                report.close()
        return SearchResult(
            space=space.name,
            objectives=problem.objectives,
            constraints=problem.constraint_names,
            algorithm=name,
            settings=algo.settings(),
            seed=int(seed),
            budget=int(budget),
            evaluations=tuple(made),
            front=feasible_front(made),
            stop_reason=stop,
            wall_s=time.perf_counter() - start,
            oracle_s=oracle_s,
            num_resumed=resumed,
            num_screened_out=len(screened_out),
        )


def _screen(screen: Any, genomes: list[Genome], keep: float) -> tuple[list[Genome], list[Genome]]:
    """Split ``genomes`` into the best ``keep`` share by the screen's first metric, and the rest.

    Ties keep the algorithm's order, so a seeded search screens the same way every time.
    """
    if len(genomes) <= 1:
        return genomes, []
    metric = screen.metrics[0]
    many = getattr(screen, "evaluate_many", None)
    values = many(genomes) if callable(many) else [screen.evaluate(g) for g in genomes]
    scores = [float(v[metric]) for v in values]
    scores = [s if s == s else float("inf") for s in scores]  # NaN ranks last
    n_keep = max(1, int(np.ceil(keep * len(genomes))))
    order = sorted(range(len(genomes)), key=lambda i: (scores[i], i))
    kept = set(order[:n_keep])
    return [g for i, g in enumerate(genomes) if i in kept], [g for i, g in enumerate(genomes) if i not in kept]


def _evaluate(problem: Problem, genomes: list[Genome], executor: Any, store: Any) -> dict[Genome, Evaluation]:
    """Evaluate ``genomes``; write each to ``store`` (one by one in-process, per batch otherwise)."""
    out: dict[Genome, Evaluation] = {}
    if not genomes:
        return out
    if executor is None:
        for g in genomes:
            evaluation = problem.evaluate(g)
            if store is not None:
                store.put_evaluation(evaluation.arch, **_record_fields(evaluation))
            out[g] = evaluation
        return out
    results = executor.map(problem.evaluate, genomes)
    if store is not None:
        # One row (one transaction) at a time: the store is duck-typed here, since search sits
        # below runs in the package layering and does not import it.
        for e in results:
            store.put_evaluation(e.arch, **_record_fields(e))
    return dict(zip(genomes, results))


def _record_fields(e: Evaluation) -> dict[str, Any]:
    return {
        "genome": list(e.genome),
        "objectives": e.objectives,
        "constraints": e.constraints,
        "feasible": e.feasible,
        "seconds": e.seconds,
        "meta": {"metrics": e.metrics, "violation": e.violation},
    }


def _store_owner(store: Any) -> contextlib.AbstractContextManager[object]:
    """The lock on the store's directory, or nothing when there is no file or the caller holds it.

    A caller that opened the store under its own :class:`~slimforge.io.DirectoryLock` (the CLI,
    a design run) already owns it; a store without a file path (an in-memory test double) has
    nothing to lock.
    """
    path = getattr(store, "path", None)
    if store is None or path is None or str(path) == ":memory:":
        return contextlib.nullcontext()
    lock = DirectoryLock(Path(path).parent, what="search store")
    try:
        return lock.acquire()
    except LockedError as exc:
        if exc.pid == os.getpid():
            return contextlib.nullcontext()
        raise


def _open_store(store: Any, problem: Problem, run_meta: dict, resume: bool) -> dict[Genome, Evaluation]:
    """Check that ``store`` may take this search; return its evaluations when resuming."""
    if store is None:
        if resume:
            raise InvalidInputError("resume=True needs the run store of the search to resume")
        return {}
    prior = store.get_meta(_META_KEY)
    records = store.evaluations()
    if (prior is not None or records) and not resume:
        raise InvalidInputError(
            f"run store {store.path} already holds a search ({len(records)} evaluations); "
            "resume it (--resume / resume=True) or use a new run directory"
        )
    if prior is not None and prior != run_meta:
        diff = [k for k in run_meta if prior.get(k) != run_meta[k]]
        raise InvalidInputError(
            f"run store {store.path} holds a different search (its {', '.join(diff)} differ); "
            "resume with the same problem, algorithm, settings and seed, or use a new run directory"
        )
    if prior is None:
        store.set_meta(_META_KEY, run_meta)
    stored = {}
    for rec in records:
        genome = tuple(rec.genome)
        metrics = dict(rec.meta.get("metrics") or {})
        missing = [m for m in problem.objectives if m not in metrics]
        if missing:
            raise InvalidInputError(
                f"run store {store.path}: evaluation {rec.key} lacks {', '.join(missing)}; use a new run directory"
            )
        stored[genome] = problem.make_evaluation(genome, metrics, rec.seconds)
    return stored


def _report(
    report: Callable[[SearchProgress], None], made: list[Evaluation], budget: int, hv: FixedHypervolume
) -> None:
    feasible = [e for e in made if e.feasible and np.all(np.isfinite(e.vector))]
    front = feasible_front(feasible)
    value = hv(front, np.array([e.vector for e in feasible], dtype=float)) if front else 0.0
    report(SearchProgress(len(made), budget, len(feasible), len(front), value))


def _jsonable(value: Any) -> Any:
    # What the store gives back is JSON; compare like with like.
    return json.loads(json.dumps(value))
