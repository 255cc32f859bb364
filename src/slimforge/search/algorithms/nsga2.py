"""NSGA-II as the hardware co-design study specifies it (Deb et al. 2002; study Table 5-2)."""

from __future__ import annotations

import numpy as np

from slimforge.search.algorithms._base import objective_matrix
from slimforge.search.algorithms._ga import GenerationalGA
from slimforge.search.evaluation import Evaluation
from slimforge.search.pareto import survival_order

__all__ = ["NSGA2"]


class NSGA2(GenerationalGA):
    """NSGA-II: elitist survival by constrained non-dominated rank, then crowding distance.

    Each generation's children (20 crossover from the best 10, 25 mutation, 5 random, mutation
    probability 0.1; defaults from the study) are merged with the population of 50; fast
    non-dominated sorting fills the next population front by front and the last front by
    crowding distance (boundary points first, distances normalised per objective). Children
    that repeat a population member are redrawn. Runs ``iterations`` (20) generations.
    See :class:`GenerationalGA` for the arguments.
    """

    name = "nsga2"

    def _order(self, evaluations: list[Evaluation]) -> np.ndarray:
        F, violation = objective_matrix(evaluations)
        return survival_order(F, violation)
