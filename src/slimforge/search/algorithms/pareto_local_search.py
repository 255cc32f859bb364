"""Focused Pareto local search: slimforge's own algorithm for expensive, discrete, deduplicated search.

Pareto local search (Paquete, Chiarandini & Stützle 2004) explores the single-gene neighbours
of the current non-dominated set. Two changes make it spend a small budget where it matters:

* *Focus.* The initial random sample fixes a reference point at its per-objective median
  (``focus_percentile``), the same kind of statistic the co-design study's CEA takes its ε
  bounds from. Front members are expanded with probability proportional to their exclusive
  hypervolume contribution with respect to that point, so the search first fills the part of
  the front that beats a typical architecture in every objective (where a user picks a model);
  ``floor`` keeps a share of the effort on the rest of the front, and once the focus region's
  neighbourhoods are spent the whole front is expanded uniformly.
* *No repeats.* A genome is proposed at most once (by canonical form), so every proposal is a
  new evaluation; neighbourhoods of a member are drawn without replacement until spent, then
  the member is skipped (and the next front is used when the whole front is spent).

A share ``1 - p_local`` of the proposals are uniform crossovers of two front members, the
global move that lets the search jump between separate parts of the front.

Everything is generic over spaces: it uses only ``sample``, ``neighbours``, ``crossover`` and
``canonical``, and objective values as they come back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count, objective_matrix
from slimforge.search.evaluation import Evaluation
from slimforge.search.indicators import hv_contributions
from slimforge.search.pareto import constrained_rank, pareto_mask
from slimforge.spaces import Genome, SearchSpace

__all__ = ["ParetoLocalSearch"]

_MAX_TRIES = 20


class ParetoLocalSearch(Algorithm):
    """Focused Pareto local search (see the module docstring).

    Args:
        space: the search space.
        seed: random seed.
        n_init: random genomes evaluated first (they also fix the focus reference point).
        batch_size: genomes per ask.
        p_local: probability that a proposal is a neighbour of a front member (else a crossover).
        floor: share of the expansion probability spread uniformly over all front members.
        focus_percentile: percentile of the initial sample that sets the focus reference point.
        weight_power: expansion weight = contribution ** weight_power (``auto`` uses 2).
        deepen: once the front inside the focus box is spent, expand this many further
            non-dominated layers of the box before the front outside it (``auto`` uses 1).
    """

    name = "pls"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        n_init: int = 20,
        batch_size: int = 10,
        p_local: float = 0.9,
        floor: float = 0.05,
        focus_percentile: float = 50.0,
        weight_power: float = 1.0,
        deepen: int = 0,
    ) -> None:
        super().__init__(space, seed=seed)
        check_count("n_init", n_init, space, default=20)
        check_count("batch_size", batch_size, space, default=10)
        for label, value, low, high in (
            ("p_local", p_local, 0.0, 1.0),
            ("floor", floor, 0.0, 1.0),
            ("focus_percentile", focus_percentile, 0.0, 100.0),
            ("weight_power", weight_power, 0.0, 4.0),
        ):
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise InvalidInputError(f"{label} must be a number in [{low:g}, {high:g}], got {value!r}")
        self.n_init = int(n_init)
        self.batch_size = int(batch_size)
        self.p_local = float(p_local)
        self.floor = float(floor)
        self.focus_percentile = float(focus_percentile)
        if isinstance(deepen, bool) or not isinstance(deepen, int) or not 0 <= deepen <= 100:
            raise InvalidInputError(f"deepen must be an int in [0, 100], got {deepen!r}")
        self.weight_power = float(weight_power)
        self.deepen = deepen
        self.archive: list[Evaluation] = []
        self._F = np.zeros((0, 0))
        self._violation = np.zeros(0)
        self._in_archive: set[Genome] = set()
        self._proposed: set[Genome] = set()
        self._unexplored: dict[Genome, list[Genome]] = {}
        self._reference: np.ndarray | None = None
        self._initialised = False

    def settings(self) -> dict[str, Any]:
        return {
            "n_init": self.n_init,
            "batch_size": self.batch_size,
            "p_local": self.p_local,
            "floor": self.floor,
            "focus_percentile": self.focus_percentile,
            "weight_power": self.weight_power,
            "deepen": self.deepen,
        }

    # ------------------------------------------------------------------ ask
    def _ask(self) -> list[Genome]:
        if not self._initialised:
            return self._sample_new(self.n_init, self._proposed)
        if not self.archive:
            return self._sample_new(self.batch_size, self._proposed)
        F, violation = self._F, self._violation
        front_idx = self._front(F, violation)
        parents, weights = self._parents(F, violation, front_idx)
        front = [self.archive[i].genome for i in front_idx]
        out: list[Genome] = []
        for _ in range(self.batch_size * _MAX_TRIES):
            if len(out) == self.batch_size:
                break
            if parents and self.rng.random() < self.p_local:
                k = int(self.rng.choice(len(parents), p=weights))
                child = self._take_neighbour(self.archive[parents[k]].genome)
                if child is None:  # spent by an earlier pick of this ask
                    continue
            else:
                child = self._crossover(front)
                if child is None:
                    continue
            self._proposed.add(child)
            out.append(child)
        if not out:
            out = self._sample_new(self.batch_size, self._proposed)
        return out

    def _front(self, F: np.ndarray, violation: np.ndarray) -> np.ndarray:
        feasible = np.flatnonzero(violation <= 0)
        if len(feasible):
            return feasible[pareto_mask(F[feasible])]
        return np.flatnonzero(violation == violation.min())

    def _parents(
        self, F: np.ndarray, violation: np.ndarray, front_idx: np.ndarray
    ) -> tuple[list[int], np.ndarray | None]:
        """Best-ranked members that still have unexplored neighbours, and their expansion weights."""
        if self.deepen:
            layered = self._focus_layers(F, violation)
            if layered is not None:
                return layered
        parents = [int(i) for i in front_idx if self._neighbours(self.archive[i].genome)]
        if not parents:
            rank = constrained_rank(F, violation)
            for r in np.unique(rank):
                parents = [
                    int(i) for i in np.flatnonzero(rank == r) if self._neighbours(self.archive[i].genome)
                ]
                if parents:
                    break
        if not parents:
            return [], None
        return parents, self._weights(F, violation, parents)

    def _weights(self, F: np.ndarray, violation: np.ndarray, parents: list[int]) -> np.ndarray:
        n = len(parents)
        uniform = np.full(n, 1.0 / n)
        if self._reference is None or np.any(violation[parents] > 0):
            return uniform
        finite = np.all(np.isfinite(F), axis=1)
        lower, upper = F[finite].min(axis=0), F[finite].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        points = (F[parents] - lower) / span
        contrib = hv_contributions(points, (self._reference - lower) / span)
        if not np.all(np.isfinite(contrib)) or contrib.sum() <= 0:
            return uniform
        contrib = self._powered(contrib)
        return (1.0 - self.floor) * contrib / contrib.sum() + self.floor * uniform

    def _powered(self, contrib: np.ndarray) -> np.ndarray:
        """Contributions raised to ``weight_power`` (2: the largest gaps get more of the effort)."""
        if self.weight_power == 1.0:
            return contrib
        return np.where(contrib > 0, np.power(np.clip(contrib, 1e-300, None), self.weight_power), 0.0)

    def _focus_layers(self, F: np.ndarray, violation: np.ndarray) -> tuple[list[int], np.ndarray] | None:
        """Parents from the focus box, layer by layer: the first of ``1 + deepen`` layers with unexplored neighbours.

        The first layer is the front inside the focus box, so until its neighbourhoods are spent
        this is focused PLS (weights: contributions within the layer). Once they are (a Pareto
        local optimum of the focus region), the box's next non-dominated layers are expanded
        before the front outside the box: those near-misses are the stepping stones to front
        members that no single-gene step from the current front reaches. ``None`` when these
        layers are spent too (the caller falls back to the whole archive, rank by rank).
        """
        if self._reference is None or np.any(violation > 0):
            return None
        finite = np.all(np.isfinite(F), axis=1)
        box = np.flatnonzero(finite & np.all(F < self._reference, axis=1))
        if len(box) == 0:
            return None
        lower, upper = F[finite].min(axis=0), F[finite].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        ref = (self._reference - lower) / span
        rank = constrained_rank(F[box], violation[box])
        for r in np.unique(rank):
            if r > self.deepen:
                break
            layer = box[rank == r]
            open_ = np.array([bool(self._neighbours(self.archive[i].genome)) for i in layer])
            if not open_.any():
                continue
            contrib = hv_contributions((F[layer] - lower) / span, ref)[open_]
            parents = [int(i) for i in layer[open_]]
            n = len(parents)
            uniform = np.full(n, 1.0 / n)
            if not np.all(np.isfinite(contrib)) or contrib.sum() <= 0:
                return parents, uniform
            contrib = self._powered(contrib)
            return parents, (1.0 - self.floor) * contrib / contrib.sum() + self.floor * uniform
        return None

    def _neighbours(self, genome: Genome) -> list[Genome]:
        """Unexplored canonical neighbours of ``genome`` (cached, pruned as they get proposed)."""
        pending = self._unexplored.get(genome)
        if pending is None:
            canon = (self.space.canonical(n) for n in self.space.neighbours(genome))
            pending = list(dict.fromkeys(c for c in canon if c != genome))
        pending = [g for g in pending if g not in self._proposed]
        self._unexplored[genome] = pending
        return pending

    def _take_neighbour(self, genome: Genome) -> Genome | None:
        pending = self._neighbours(genome)
        if not pending:
            return None
        return pending.pop(int(self.rng.integers(len(pending))))

    def _crossover(self, front: list[Genome]) -> Genome | None:
        for _ in range(_MAX_TRIES):
            if len(front) < 2:
                child = self.space.canonical(self.space.sample(self.rng))
            else:
                i, j = self.rng.choice(len(front), size=2, replace=False)
                child = self.space.canonical(self.space.crossover(front[i], front[j], self.rng))
            if child not in self._proposed:
                return child
        return None

    # ----------------------------------------------------------------- tell
    def _tell(self, evaluations: list[Evaluation]) -> None:
        if not self._initialised:
            self._initialised = True
            self._reference = self._focus_reference(evaluations)
        new = []
        for e in evaluations:
            self._proposed.add(e.genome)
            if e.genome not in self._in_archive:
                self._in_archive.add(e.genome)
                new.append(e)
        if new:
            F, violation = objective_matrix(new)
            self._F = F if not self.archive else np.vstack([self._F, F])
            self._violation = np.concatenate([self._violation, violation])
            self.archive.extend(new)

    def _focus_reference(self, evaluations: list[Evaluation]) -> np.ndarray | None:
        F, violation = objective_matrix(evaluations)
        if len(F) == 0:
            return None
        rows = F[(violation <= 0) & np.all(np.isfinite(F), axis=1)]
        if len(rows) == 0:
            rows = F[np.all(np.isfinite(F), axis=1)]
        return np.percentile(rows, self.focus_percentile, axis=0) if len(rows) else None
