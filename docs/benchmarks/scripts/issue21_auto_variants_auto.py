"""Issue 21, `auto` tuning: ``auto`` over :class:`VariantPLS` (see issue21_auto_variants.py)."""

from __future__ import annotations

from typing import Any

from issue21_auto_variants import VariantPLS as ParetoLocalSearch

from slimforge.search.algorithms._base import Algorithm, check_count
from slimforge.search.algorithms._ga import GA_DEFAULTS
from slimforge.search.algorithms.nsga2 import NSGA2
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["VariantAuto"]


class _AdoptingPLS(ParetoLocalSearch):
    """Pareto local search that starts from evaluations made elsewhere instead of a random sample."""

    def adopt(self, evaluations: list[Evaluation], reference_sample: list[Evaluation]) -> None:
        self._initialised = True
        self._reference = self._focus_reference(reference_sample)
        self._tell(evaluations)


class VariantAuto(Algorithm):
    """NSGA-II for ``global_evaluations`` distinct evaluations (none by default), then focused PLS.

    Args:
        space: the search space.
        seed: random seed (both phases draw from generators seeded by it).
        global_evaluations: distinct evaluations of the NSGA-II phase (0: local search only).
        pop_size: NSGA-II population, or the local search's initial random sample without one.
        batch_size: genomes per ask in the local phase.
        p_local / floor / focus_percentile: the local phase's settings (see ``pls``).
    """

    name = "auto_variants"

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
        epsilon: float = 0.0,
        network_moves: bool = False,
        deepen: bool = False,
        weight_power: float = 1.0,
        model_filter: bool = False,
        learn_moves: bool = False,
        second_share: float = 0.0,
        extreme_bonus: bool = False,
        alt_percentile: float = -1.0,
        deepen_layers: int = 0,
    ) -> None:
        super().__init__(space, seed=seed)
        check_count("global_evaluations", global_evaluations, space, minimum=0, default=0)
        self.global_evaluations = int(global_evaluations)
        # Two independent streams from the one seed: the phases never share draws.
        seeds = self.rng.integers(2**31, size=2)
        self._global = NSGA2(space, seed=int(seeds[0]), pop_size=pop_size, iterations=None)
        self._local = _AdoptingPLS(
            space,
            seed=int(seeds[1]),
            n_init=pop_size,
            batch_size=batch_size,
            p_local=p_local,
            floor=floor,
            focus_percentile=focus_percentile,
            epsilon=epsilon,
            network_moves=network_moves,
            deepen=deepen,
            weight_power=weight_power,
            model_filter=model_filter,
            learn_moves=learn_moves,
            second_share=second_share,
            extreme_bonus=extreme_bonus,
            alt_percentile=alt_percentile,
            deepen_layers=deepen_layers,
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
        return {
            "global_evaluations": self.global_evaluations,
            "pop_size": self._global.pop_size,
            "batch_size": local["batch_size"],
            "p_local": local["p_local"],
            "floor": local["floor"],
            "focus_percentile": local["focus_percentile"],
            "epsilon": local["epsilon"],
            "network_moves": local["network_moves"],
            "deepen": local["deepen"],
            "weight_power": local["weight_power"],
            "model_filter": local["model_filter"],
            "learn_moves": local["learn_moves"],
            "second_share": local["second_share"],
            "extreme_bonus": local["extreme_bonus"],
            "alt_percentile": local["alt_percentile"],
            "deepen_layers": local["deepen_layers"],
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
