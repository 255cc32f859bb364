"""``auto``: the default search; focused Pareto local search, optionally after an NSGA-II phase.

Two halves fail in opposite ways on NAS-Bench-201 tables. Pareto local search
(:class:`~slimforge.search.algorithms.pareto_local_search.ParetoLocalSearch`) refines a front
fast from a small random sample, but with its reference at the sample's median error it ignores
the networks just above that error, which on the ONNX Runtime table of the Raspberry Pi 5 is
the whole low-latency 1x1-convolution part of the front (a third of the hypervolume above the
table's median): one seed in three lost it. NSGA-II's crossover reaches every part of the front
but refines it slowly. ``auto`` runs NSGA-II (the study's offspring scheme, population
``pop_size``) for ``global_evaluations`` distinct evaluations, then hands everything evaluated
to Pareto local search, whose focus reference point is the ``focus_percentile`` of NSGA-II's
initial random population in every objective.

The split is a rule on evaluations, not on the budget: the search engine does not tell an
algorithm its budget, and a fixed rule keeps a resumed or extended search identical. The
defaults were chosen on NAS-Bench-201 CIFAR-10 with both Raspberry Pi 5 device tables at seeds
50-59 (BENCHMARKS.md, issue 21): a focus at the 60th percentile with no uniform floor (the
low-latency part of the front is inside the focus box) mattered; an NSGA-II phase of 100-300
evaluations lowered the median at 500 evaluations on those tables, so the default phase is
empty (``global_evaluations=0``: a random sample of ``pop_size``, then local search). Give
``global_evaluations`` for spaces where one random sample does not reach every part of the front.

Two settings of the local phase were added after a wider tuning on seeds 50-99 (BENCHMARKS.md,
issue 21): expansion weights are the squared hypervolume contributions (``weight_power=2``: the
largest gaps of the focus front get more of the effort), and once every neighbourhood of the
front inside the focus box is spent, the box's second non-dominated layer is expanded before the
front outside the box (``deepen=1``). On the ONNX Runtime table a run then reaches the median
0.99 target in about 700 evaluations instead of 800; at 500 neither reaches it there.

``model_share`` (off by default) gives that share of every local batch to a Gaussian process over
the whole space (:class:`~slimforge.search.algorithms._model_picks.ModelPicks`), which proposes the
networks its predictions put furthest into the gaps of the focus front, including those two steps
away through a dominated network. ``model_share=0.3, batch_size=5`` raised the ONNX Runtime table's
median from 0.967 to 0.971 on the acceptance seeds (0.996 on the tuning seeds) and LiteRT's minimum
from 0.969 to 0.999, at ~5 s of CPU per 500 evaluations; it is not the default because it costs
that CPU on every search and lost to random search on one seed of the tests' toy problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count
from slimforge.search.algorithms._ga import GA_DEFAULTS
from slimforge.search.algorithms._model_picks import ModelPicks
from slimforge.search.algorithms.nsga2 import NSGA2
from slimforge.search.algorithms.pareto_local_search import ParetoLocalSearch
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["Auto"]


class _AdoptingPLS(ParetoLocalSearch):
    """Pareto local search that starts from evaluations made elsewhere instead of a random sample."""

    def adopt(self, evaluations: list[Evaluation], reference_sample: list[Evaluation]) -> None:
        self._initialised = True
        self._reference = self._focus_reference(reference_sample)
        self._tell(evaluations)


class _GuidedPLS(_AdoptingPLS):
    """:class:`_AdoptingPLS` whose every batch gives ``model_share`` of its slots to :class:`ModelPicks`."""

    def __init__(self, space: SearchSpace, *, model_share: float, **kwargs: Any) -> None:
        super().__init__(space, **kwargs)
        self.model_share = model_share
        self._model = ModelPicks(space) if model_share > 0 else None

    def _ask(self) -> list[Genome]:
        n = round(self.model_share * self.batch_size)
        if (
            self._model is None
            or not self._model.active
            or n <= 0
            or not (self._initialised and self.archive)
        ):
            return super()._ask()
        genomes = [e.genome for e in self.archive]
        picks = self._model.picks(n, genomes, self._F, self._violation, self._reference, self._proposed)
        return self._batch_with(picks)

    def _batch_with(self, picks: list[Genome], fill: Callable[[], list[Genome]] | None = None) -> list[Genome]:
        """``picks`` (marked proposed), then ``fill``'s proposals (local search's by default) for the rest."""
        self._proposed.update(picks)
        size = self.batch_size
        self.batch_size = size - len(picks)
        try:
            rest = (fill or super()._ask)() if self.batch_size > 0 else []
        finally:
            self.batch_size = size
        chosen = set(picks)
        return picks + [g for g in rest if g not in chosen]


class Auto(Algorithm):
    """NSGA-II for ``global_evaluations`` distinct evaluations (none by default), then focused PLS.

    Args:
        space: the search space.
        seed: random seed (both phases draw from generators seeded by it).
        global_evaluations: distinct evaluations of the NSGA-II phase (0: local search only).
        pop_size: NSGA-II population, or the local search's initial random sample without one.
        batch_size: genomes per ask in the local phase.
        p_local / floor / focus_percentile / weight_power / deepen: the local phase's settings
            (see ``pls``).
        model_share: share of every local batch proposed by a GP over the whole space
            (:mod:`~slimforge.search.algorithms._model_picks`; spaces of at most 50,000 genomes,
            two objectives); 0 (the default) turns it off. ``model_share=0.3, batch_size=5`` is
            the model-guided rule measured in BENCHMARKS.md (issue 21): better on NAS-Bench-201's
            tables, short of the 0.99 target, and 50-100x the CPU per proposal.
    """

    name = "auto"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        global_evaluations: int = 0,
        pop_size: int = GA_DEFAULTS["pop_size"],
        batch_size: int = 10,
        p_local: float = 0.9,
        floor: float = 0.0,
        focus_percentile: float = 60.0,
        weight_power: float = 2.0,
        deepen: int = 1,
        model_share: float = 0.0,
    ) -> None:
        super().__init__(space, seed=seed)
        check_count("global_evaluations", global_evaluations, space, minimum=0, default=0)
        if isinstance(model_share, bool) or not (
            isinstance(model_share, (int, float)) and 0.0 <= model_share <= 1.0
        ):
            raise InvalidInputError(f"model_share must be a number in [0, 1], got {model_share!r}")
        self.global_evaluations = int(global_evaluations)
        # Two independent streams from the one seed: the phases never share draws.
        seeds = self.rng.integers(2**31, size=2)
        self._global = NSGA2(space, seed=int(seeds[0]), pop_size=pop_size, iterations=None)
        self._local = _GuidedPLS(
            space,
            model_share=float(model_share),
            seed=int(seeds[1]),
            n_init=pop_size,
            batch_size=batch_size,
            p_local=p_local,
            floor=floor,
            focus_percentile=focus_percentile,
            weight_power=weight_power,
            deepen=deepen,
        )
        self.archive: dict[Genome, Evaluation] = {}
        self._first: list[Evaluation] = []
        self._local_phase = self.global_evaluations == 0

    @property
    def phase(self) -> str:
        """``"global"`` (NSGA-II) or ``"local"`` (Pareto local search)."""
        return "local" if self._local_phase else "global"

    def settings(self) -> dict[str, Any]:
        local = self._local.settings()
        # model_share only when on: stores and run fingerprints of searches without it stay valid.
        model = {"model_share": self._local.model_share} if self._local.model_share else {}
        return {
            "global_evaluations": self.global_evaluations,
            "pop_size": self._global.pop_size,
            "batch_size": local["batch_size"],
            "p_local": local["p_local"],
            "floor": local["floor"],
            "focus_percentile": local["focus_percentile"],
            "weight_power": local["weight_power"],
            "deepen": local["deepen"],
            **model,
        }

    def _ask(self) -> list[Genome]:
        return (self._local if self._local_phase else self._global).ask()

    def _tell(self, evaluations: list[Evaluation]) -> None:
        if self._local_phase:
            self._local.tell(evaluations)
            return
        self._global.tell(evaluations)
        if not self._first:
            self._first = list(evaluations)
        for e in evaluations:
            self.archive.setdefault(e.genome, e)
        if len(self.archive) >= self.global_evaluations:
            self._local_phase = True
            self._local.adopt(list(self.archive.values()), self._first)
