"""Multi-objective Bayesian optimisation over genomes (BoTorch's qLogNEHVI, categorical kernel).

For searches where each evaluation is expensive (a training run, a measurement on a board) and
the budget is tens to a few hundred evaluations. After ``n_init`` random genomes, each ask fits
one Gaussian process per objective on every evaluation so far, with BoTorch's
``CategoricalKernel`` (a genome is a vector of categorical genes): by default a sum over genes
of one-gene categorical kernels, each with its own scale (``kernel="additive"``), or one ARD
kernel over all genes (``"product"``, ``MixedSingleTaskGP``). It picks ``batch_size`` genomes
by sequential greedy maximisation of q-log noisy expected hypervolume improvement (qLogNEHVI;
Daulton et al. 2021, Ament et al. 2023) over a candidate pool of ``pool_size`` genomes:
unevaluated single-gene neighbours of the current front (up to half) and random genomes (a
genome space is discrete; gradient optimisation of the acquisition does not apply).

Objectives are modelled after a log transform where they are all positive (latency and error
span orders of magnitude; the log makes them closer to stationary) and min-max scaling. The
hypervolume reference point is the ``ref_percentile`` (median) of the initial random design in
every objective, the statistic :mod:`pareto_local_search` focuses on: it spends the budget on
networks that beat a typical one in every objective rather than on the extremes of the front
(10%-accuracy networks at the lowest latency).

Cost: fitting the hyperparameters is cubic in the evaluations, and NEHVI's joint posterior over
its baseline and each candidate dominates an ask. So the hyperparameters are refitted (from
the last fit) only when the evaluations have grown by a quarter since the last fit, on at most
``fit_points`` of them (the current best fronts first, then a seeded random share); between
fits the GP is conditioned on every evaluation with the last hyperparameters. NEHVI's baseline
is the evaluations of the first non-dominated fronts, at most ``baseline_points`` of them, and
it ranks only the ``batch_size + 40`` pool genomes whose optimistic prediction (mean + one
standard deviation) improves the observed front most.

Needs the optional extra ``pip install slimforge[bo]`` (botorch, gpytorch). Every random draw
(initial design, pool, quasi-Monte-Carlo samples, hyperparameter-fit restarts) is seeded from
``seed`` inside :func:`torch.random.fork_rng`, so a seed gives the same search every time and
PyTorch's global generator is left as it was.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.search.algorithms._base import Algorithm, check_count, objective_matrix
from slimforge.search.evaluation import Evaluation
from slimforge.search.pareto import constrained_rank
from slimforge.spaces import Genome, SearchSpace

__all__ = ["BayesianOptimization", "require_botorch"]

_INSTALL = "pip install 'slimforge[bo]' (botorch and gpytorch; they use the installed torch)"


def require_botorch() -> Any:
    """Import botorch, or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        import botorch
        import gpytorch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the 'bo' search algorithm needs botorch and gpytorch ({exc.name} is missing); {_INSTALL}, "
            "or choose another algorithm (--algorithm auto)"
        ) from None
    return botorch


class BayesianOptimization(Algorithm):
    """Multi-objective BO: GP per objective with a categorical kernel + qLogNEHVI over a pool.

    Args:
        space: the search space.
        seed: random seed.
        n_init: random genomes of the initial design (the budget must be at least this).
        batch_size: genomes per ask after the initial design (the q of the acquisition).
        pool_size: candidates per ask: unevaluated neighbours of the front (up to half) and
            random genomes.
        mc_samples: quasi-Monte-Carlo samples of the acquisition.
        ref_percentile: percentile of the initial design that sets the hypervolume reference point.
        log_objectives: model log(objective) where an objective is positive everywhere.
        acquisition: ``qlognehvi`` (default; noisy evaluations such as measured latency) or
            ``qlogehvi`` (noise-free; cheaper).
        fit_points: most evaluations the hyperparameters are fitted on.
        baseline_points: most evaluations in NEHVI's baseline.
        kernel: ``additive`` (default: a sum of one-gene categorical kernels) or ``product``
            (one ARD categorical kernel over all genes, BoTorch's ``MixedSingleTaskGP``).
    """

    name = "bo"
    _settings = (
        "n_init",
        "batch_size",
        "pool_size",
        "mc_samples",
        "ref_percentile",
        "log_objectives",
        "acquisition",
        "fit_points",
        "baseline_points",
        "kernel",
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        n_init: int = 20,
        batch_size: int = 5,
        pool_size: int = 300,
        mc_samples: int = 64,
        ref_percentile: float = 50.0,
        log_objectives: bool = True,
        acquisition: str = "qlognehvi",
        fit_points: int = 200,
        baseline_points: int = 50,
        kernel: str = "additive",
    ) -> None:
        super().__init__(space, seed=seed)
        require_botorch()
        check_count("n_init", n_init, space, minimum=2, default=20)
        check_count("batch_size", batch_size, space, default=5)
        check_count("pool_size", pool_size, space, default=300)
        check_count("fit_points", fit_points, space, minimum=2, default=200)
        check_count("baseline_points", baseline_points, space, default=50)
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or not 8 <= mc_samples <= 4096:
            raise InvalidInputError(f"mc_samples must be an int in [8, 4096], got {mc_samples!r}")
        if not (isinstance(ref_percentile, (int, float)) and 0.0 <= ref_percentile <= 100.0):
            raise InvalidInputError(f"ref_percentile must be a number in [0, 100], got {ref_percentile!r}")
        if not isinstance(log_objectives, bool):
            raise InvalidInputError(f"log_objectives must be true or false, got {log_objectives!r}")
        if kernel not in ("additive", "product"):
            raise InvalidInputError(f"kernel must be 'additive' or 'product', got {kernel!r}")
        if acquisition not in ("qlognehvi", "qlogehvi"):
            raise InvalidInputError(f"acquisition must be 'qlognehvi' or 'qlogehvi', got {acquisition!r}")
        self.n_init = int(n_init)
        self.batch_size = int(batch_size)
        self.pool_size = int(pool_size)
        self.mc_samples = int(mc_samples)
        self.ref_percentile = float(ref_percentile)
        self.log_objectives = log_objectives
        self.acquisition = acquisition
        self.fit_points = int(fit_points)
        self.baseline_points = int(baseline_points)
        self.kernel = kernel
        self.archive: list[Evaluation] = []
        self._seen: set[Genome] = set()
        self._proposed: set[Genome] = set()
        self._asked = 0
        self._reference: np.ndarray | None = None
        self._hyper: Any = None
        self._fitted_on = 0
        self._initialised = False

    def check_run(self, *, budget: int | None = None, lower_bounds: Any = None) -> None:
        if budget is not None and budget < self.n_init:
            raise InvalidInputError(_budget_message(budget, self.n_init))

    # ------------------------------------------------------------------ ask
    def _ask(self) -> list[Genome]:
        out = self._propose() if self._initialised else self._sample_new(self.n_init, self._proposed)
        self._asked = len(out)
        return out

    def _propose(self) -> list[Genome]:
        rows = [e for e in self.archive if np.all(np.isfinite(e.vector))]
        if len(rows) < 2 or self._reference is None:
            return self._sample_new(self.batch_size, self._proposed)
        pool = self._pool(rows)
        if len(pool) <= self.batch_size:
            self._proposed.update(pool)
            return pool + self._sample_new(self.batch_size - len(pool), self._proposed)
        from slimforge.search.algorithms._bo_model import select_batch

        F, violation = objective_matrix(rows)
        rank = constrained_rank(F, violation)
        by_rank = np.lexsort((np.arange(len(rows)), rank))
        refit = self._hyper is None or len(rows) >= 1.25 * self._fitted_on
        fit_rows = None
        if refit:
            self._fitted_on = len(rows)
            fit_rows = by_rank[: self.fit_points // 2]
            rest = by_rank[self.fit_points // 2 :]
            extra = self.rng.choice(
                len(rest), size=min(len(rest), self.fit_points - len(fit_rows)), replace=False
            )
            fit_rows = np.sort(np.concatenate([fit_rows, rest[extra]]))
        picks, self._hyper = select_batch(
            np.array([e.genome for e in rows], dtype=float),
            self._transform(F),
            np.array(pool, dtype=float),
            self._transform(self._reference[None, :])[0],
            q=self.batch_size,
            mc_samples=self.mc_samples,
            seed=int(self.rng.integers(2**31)),
            acquisition=self.acquisition,
            baseline=np.sort(by_rank[: self.baseline_points]),
            fit_rows=fit_rows,
            hyper=self._hyper,
            kernel=self.kernel,
        )
        out = [pool[i] for i in picks]
        self._proposed.update(out)
        return out

    def _pool(self, rows: list[Evaluation]) -> list[Genome]:
        """Unevaluated neighbours of the front (at most half the pool), then random genomes."""
        F, violation = objective_matrix(rows)
        neighbours: dict[Genome, None] = {}
        for i in np.flatnonzero(constrained_rank(F, violation) == 0):
            for n in self.space.neighbours(rows[i].genome):
                c = self.space.canonical(n)
                if c not in self._proposed:
                    neighbours[c] = None
        near = list(neighbours)
        if len(near) > self.pool_size // 2:
            keep = self.rng.choice(len(near), size=self.pool_size // 2, replace=False)
            near = [near[i] for i in np.sort(keep)]
        return near + self._sample_new(self.pool_size - len(near), set(self._proposed) | set(near))

    def _transform(self, F: np.ndarray) -> np.ndarray:
        """Objectives as the model sees them: log where positive, then min-max over the archive."""
        A = np.array([e.vector for e in self.archive if np.all(np.isfinite(e.vector))], dtype=float)
        use_log = self.log_objectives & np.all(A > 0, axis=0)
        T = np.where(use_log, np.log(np.where(use_log, np.maximum(F, 1e-300), 1.0)), F)
        At = np.where(use_log, np.log(np.where(use_log, A, 1.0)), A)
        lower, upper = At.min(axis=0), At.max(axis=0)
        return (T - lower) / np.where(upper > lower, upper - lower, 1.0)

    # ----------------------------------------------------------------- tell
    def _tell(self, evaluations: list[Evaluation]) -> None:
        if not self._initialised:
            self._initialised = True
            distinct = {e.genome for e in evaluations}
            if len(distinct) < self._asked:
                # The budget ended inside the initial design: nothing was modelled.
                raise InvalidInputError(_budget_message(len(distinct), self.n_init))
            F, violation = objective_matrix(evaluations)
            rows = F[(violation <= 0) & np.all(np.isfinite(F), axis=1)]
            if len(rows) == 0:
                rows = F[np.all(np.isfinite(F), axis=1)]
            self._reference = np.percentile(rows, self.ref_percentile, axis=0) if len(rows) else None
        for e in evaluations:
            self._proposed.add(e.genome)
            if e.genome not in self._seen:
                self._seen.add(e.genome)
                self.archive.append(e)


def _budget_message(budget: int, n_init: int) -> str:
    return (
        f"budget {budget} is below the BO initial design of n_init={n_init} random genomes; "
        f"give a budget of at least {n_init} (more to let the model choose) or set n_init lower"
    )
