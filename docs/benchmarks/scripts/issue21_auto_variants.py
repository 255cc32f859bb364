"""Issue 21, `auto` tuning: the experimental variants of focused Pareto local search (not shipped).

Every variant measured for BENCHMARKS.md "## Issue 21" (auto section) is a setting of the classes
below, a copy of ``slimforge.search.algorithms.pareto_local_search`` / ``auto`` as they stood
during the tuning (commit of this file), with every experimental setting off by default (so
``VariantAuto()`` is the shipped ``auto`` of that time). ``issue21_auto_tune.py`` registers
``VariantAuto`` as the algorithm ``auto_variants`` and runs it on seeds 50-99.

Settings (all off by default): ``epsilon`` (expand members within epsilon of the front, weighted
by their optimistic contribution), ``network_moves`` (single-gene steps from every encoding of the
network, not only the canonical genome), ``deepen`` (once the focus box's front is spent, expand
the box's next non-dominated layer instead of the front outside the box), ``weight_power``
(expansion weight = contribution ** power), ``model_filter`` (skip neighbours that an additive
one-hot model predicts outside the focus box), ``learn_moves`` (pick neighbours by the learnt rate
at which each (old op, new op) step lands in the focus box), ``second_share`` (share of expansions
given to the box's second layer from the start), ``extreme_bonus`` (the box front's extremes get
the largest contribution's weight), ``alt_percentile`` (a second focus reference at this
percentile, the two alternating per ask), ``deepen_layers`` (with ``deepen``: how many layers of
the box, 0 = all; ``deepen=True, deepen_layers=2, weight_power=2`` is the shipped ``auto`` of
commit 0f9ae15). ``_MODEL_R2`` is 0.5 here; the ``model_filter`` row at R^2 >= 0.9 ran with 0.9.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count, objective_matrix
from slimforge.search.evaluation import Evaluation
from slimforge.search.indicators import hv_contributions, hypervolume
from slimforge.search.pareto import constrained_rank, pareto_mask
from slimforge.spaces import Genome, SearchSpace

__all__ = ["VariantPLS"]

_MAX_TRIES = 20
_MAX_ENCODINGS = 64
_MODEL_R2 = 0.5


class VariantPLS(Algorithm):
    """Focused Pareto local search (see the module docstring).

    Args:
        space: the search space.
        seed: random seed.
        n_init: random genomes evaluated first (they also fix the focus reference point).
        batch_size: genomes per ask.
        p_local: probability that a proposal is a neighbour of a front member (else a crossover).
        floor: share of the expansion probability spread uniformly over all front members.
        focus_percentile: percentile of the initial sample that sets the focus reference point.
    """

    name = "pls_variants"

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
        check_count("n_init", n_init, space, default=20)
        check_count("batch_size", batch_size, space, default=10)
        for label, value, low, high in (
            ("p_local", p_local, 0.0, 1.0),
            ("floor", floor, 0.0, 1.0),
            ("focus_percentile", focus_percentile, 0.0, 100.0),
            ("epsilon", epsilon, 0.0, 1.0),
            ("weight_power", weight_power, 0.0, 4.0),
            ("second_share", second_share, 0.0, 1.0),
        ):
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise InvalidInputError(f"{label} must be a number in [{low:g}, {high:g}], got {value!r}")
        self.n_init = int(n_init)
        self.batch_size = int(batch_size)
        self.p_local = float(p_local)
        self.floor = float(floor)
        self.focus_percentile = float(focus_percentile)
        self.epsilon = float(epsilon)
        if not isinstance(network_moves, bool):
            raise InvalidInputError(f"network_moves must be true or false, got {network_moves!r}")
        self.network_moves = network_moves
        if not isinstance(deepen, bool):
            raise InvalidInputError(f"deepen must be true or false, got {deepen!r}")
        self.deepen = deepen
        self.weight_power = float(weight_power)
        if not isinstance(model_filter, bool):
            raise InvalidInputError(f"model_filter must be true or false, got {model_filter!r}")
        self.model_filter = model_filter
        self._model: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._strict = False
        if not isinstance(learn_moves, bool):
            raise InvalidInputError(f"learn_moves must be true or false, got {learn_moves!r}")
        self.learn_moves = learn_moves
        self.second_share = float(second_share)
        if not isinstance(extreme_bonus, bool):
            raise InvalidInputError(f"extreme_bonus must be true or false, got {extreme_bonus!r}")
        self.extreme_bonus = extreme_bonus
        self.alt_percentile = float(alt_percentile)
        self.deepen_layers = int(deepen_layers)
        self._references: list = []
        self._asks = 0
        self._move_of: dict[Genome, tuple[int, int]] = {}
        self._move_stats: dict[tuple[int, int], list[int]] = {}
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
            "epsilon": self.epsilon,
            "network_moves": self.network_moves,
            "deepen": self.deepen,
            "weight_power": self.weight_power,
            "model_filter": self.model_filter,
            "learn_moves": self.learn_moves,
            "second_share": self.second_share,
            "extreme_bonus": self.extreme_bonus,
            "alt_percentile": self.alt_percentile,
            "deepen_layers": self.deepen_layers,
        }

    # ------------------------------------------------------------------ ask
    def _ask(self) -> list[Genome]:
        if not self._initialised:
            return self._sample_new(self.n_init, self._proposed)
        if not self.archive:
            return self._sample_new(self.batch_size, self._proposed)
        F, violation = self._F, self._violation
        if len(self._references) == 2:
            self._reference = self._references[self._asks % 2]
        self._asks += 1
        front_idx = self._front(F, violation)
        self._model = self._fit_model(F, violation) if self.model_filter else None
        self._strict = self._model is not None
        parents, weights = self._parents(F, violation, front_idx)
        if not parents and self._strict:
            self._strict = False
            parents, weights = self._parents(F, violation, front_idx)
        second, second_w = self._second_layer(F, violation) if self.second_share > 0 else ([], None)
        front = [self.archive[i].genome for i in front_idx]
        out: list[Genome] = []
        for _ in range(self.batch_size * _MAX_TRIES):
            if len(out) == self.batch_size:
                break
            if parents and self.rng.random() < self.p_local:
                if second and self.rng.random() < self.second_share:
                    k = int(self.rng.choice(len(second), p=second_w))
                    child = self._take_neighbour(self.archive[second[k]].genome)
                else:
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
        if self.epsilon > 0:
            near = self._near_front(F, violation, front_idx)
            if near is not None:
                return near
        if self.deepen:
            deeper = self._focus_layers(F, violation)
            if deeper is not None:
                return deeper
        parents = [int(i) for i in front_idx if self._open(self.archive[i].genome)]
        if not parents:
            rank = constrained_rank(F, violation)
            for r in np.unique(rank):
                parents = [int(i) for i in np.flatnonzero(rank == r) if self._open(self.archive[i].genome)]
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
        if self.extreme_bonus:
            inside = np.flatnonzero(contrib > 0)
            for k in range(points.shape[1]):
                contrib[inside[np.argmin(points[inside, k])]] = contrib.max()
        contrib = self._powered(contrib)
        return (1.0 - self.floor) * contrib / contrib.sum() + self.floor * uniform

    def _powered(self, contrib: np.ndarray) -> np.ndarray:
        """Contributions raised to ``weight_power`` (0: every contributing member alike)."""
        if self.weight_power == 1.0:
            return contrib
        return np.where(contrib > 0, np.power(np.clip(contrib, 1e-300, None), self.weight_power), 0.0)

    def _second_layer(self, F: np.ndarray, violation: np.ndarray) -> tuple[list[int], np.ndarray | None]:
        """The second non-dominated layer inside the focus box (members with unexplored neighbours).

        Weighted by each member's contribution within its layer. Its members are the near-misses
        whose neighbourhoods hold front members no single-gene step from the front reaches.
        """
        if self._reference is None or np.any(violation > 0):
            return [], None
        finite = np.all(np.isfinite(F), axis=1)
        box = np.flatnonzero(finite & np.all(F < self._reference, axis=1))
        if len(box) < 2:
            return [], None
        lower, upper = F[finite].min(axis=0), F[finite].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        ref = (self._reference - lower) / span
        rank = constrained_rank(F[box], violation[box])
        layer = box[rank == 1] if np.any(rank == 1) else box[:0]
        if len(layer) == 0:
            return [], None
        open_ = np.array([bool(self._open(self.archive[i].genome)) for i in layer])
        if not open_.any():
            return [], None
        contrib = self._powered(hv_contributions((F[layer] - lower) / span, ref))[open_]
        parents = [int(i) for i in layer[open_]]
        n = len(parents)
        uniform = np.full(n, 1.0 / n)
        if not np.all(np.isfinite(contrib)) or contrib.sum() <= 0:
            return parents, uniform
        return parents, (1.0 - self.floor) * contrib / contrib.sum() + self.floor * uniform

    def _focus_layers(self, F: np.ndarray, violation: np.ndarray) -> tuple[list[int], np.ndarray] | None:
        """Parents from the focus box, front by front: the first layer with unexplored neighbours.

        The first layer is the front inside the focus box, so until its neighbourhoods are spent
        this is plain focused PLS. Once they are (a Pareto local optimum of the focus region),
        the next non-dominated layer of the networks inside the box is expanded, weighted by
        its members' contributions within the layer, instead of the front outside the box: the
        second-best networks of the region are the stepping stones to front members that no
        single-gene step from the current front reaches. ``None`` when every network in the box
        is spent (the caller falls back to the whole archive).
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
            if self.deepen_layers and r >= self.deepen_layers:
                break
            layer = box[rank == r]
            open_ = np.array([bool(self._open(self.archive[i].genome)) for i in layer])
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

    def _near_front(
        self, F: np.ndarray, violation: np.ndarray, front_idx: np.ndarray
    ) -> tuple[list[int], np.ndarray] | None:
        """Members within ``epsilon`` of the front, weighted by their optimistic contribution.

        A member's optimistic contribution is the hypervolume (to the focus reference, in the
        archive's normalised objectives) that its point moved ``epsilon`` closer to the ideal in
        every objective would add to the rest of the front. Front members get at least their
        exclusive contribution; a dominated member gets a share only when it is within
        ``epsilon`` of the front, so the neighbourhoods of near-misses, which hold the front
        members that no single-gene step from the front reaches, are explored too. ``None``
        when no such member has unexplored neighbours (the caller falls back to ranks).
        """
        if self._reference is None or np.any(violation > 0):
            return None
        finite = np.all(np.isfinite(F), axis=1)
        lower, upper = F[finite].min(axis=0), F[finite].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        P = (F - lower) / span
        ref = (self._reference - lower) / span
        front = P[front_idx]
        shifted = P - self.epsilon
        # Candidates: finite, inside the focus box once shifted, not dominated by the front once shifted.
        cand = np.flatnonzero(finite & np.all(shifted < ref, axis=1))
        if len(cand) == 0:
            return None
        dominated = np.any(
            np.all(front[None, :, :] <= shifted[cand, None, :], axis=2)
            & np.any(front[None, :, :] < shifted[cand, None, :], axis=2),
            axis=1,
        )
        cand = cand[~dominated]
        in_front = {int(i) for i in front_idx}
        parents, weights = [], []
        for i in cand:
            i = int(i)
            if not self._open(self.archive[i].genome):
                continue
            others = front if i not in in_front else P[[j for j in front_idx if int(j) != i]]
            gain = _gain(others, shifted[i], ref)
            if gain > 0:
                parents.append(i)
                weights.append(gain)
        if not parents:
            return None
        w = np.array(weights)
        n = len(parents)
        return parents, (1.0 - self.floor) * w / w.sum() + self.floor * np.full(n, 1.0 / n)

    def _neighbours(self, genome: Genome) -> list[Genome]:
        """Unexplored canonical neighbours of ``genome`` (cached, pruned as they get proposed)."""
        pending = self._unexplored.get(genome)
        if pending is None:
            sources = self._encodings(genome) if self.network_moves else [genome]
            canon = (self.space.canonical(n) for g in sources for n in self.space.neighbours(g))
            pending = list(dict.fromkeys(c for c in canon if c != genome))
        pending = [g for g in pending if g not in self._proposed]
        self._unexplored[genome] = pending
        return pending

    def _encodings(self, genome: Genome) -> list[Genome]:
        """``genome`` and the genomes of the same network one gene change apart, transitively.

        Genes a network does not use (an edge behind a ``none`` edge in NAS-Bench-201) can take
        any value; a single-gene step from each of those encodings reaches networks that no
        single-gene step from the canonical genome reaches. Capped at ``_MAX_ENCODINGS``.
        """
        seen = [genome]
        known = {genome}
        k = 0
        while k < len(seen) and len(seen) < _MAX_ENCODINGS:
            for n in self.space.neighbours(seen[k]):
                if n not in known and self.space.canonical(n) == genome:
                    known.add(n)
                    seen.append(n)
                    if len(seen) >= _MAX_ENCODINGS:
                        break
            k += 1
        return seen

    def _take_neighbour(self, genome: Genome) -> Genome | None:
        pending = self._neighbours(genome)
        choices = self._open(genome)
        if not choices:
            return None
        if self.learn_moves:
            keys = [self._move_key(genome, c) for c in choices]
            rates = np.array(
                [
                    (self._move_stats.get(k, [0, 0])[0] + 1) / (self._move_stats.get(k, [0, 0])[1] + 2)
                    for k in keys
                ]
            )
            j = int(self.rng.choice(len(choices), p=rates / rates.sum()))
            child = choices[j]
            self._move_of[child] = keys[j]
        else:
            child = choices[int(self.rng.integers(len(choices)))]
        pending.remove(child)
        return child

    def _move_key(self, genome: Genome, child: Genome) -> tuple[int, int]:
        """The (old value, new value) of the single-gene step from ``genome`` that gives ``child``."""
        for i, n in enumerate(self.space.num_choices):
            for value in range(n):
                if value != genome[i]:
                    step = genome[:i] + (value,) + genome[i + 1 :]
                    if self.space.canonical(step) == child:
                        return (genome[i], value)
        return (-1, -1)

    def _open(self, genome: Genome) -> list[Genome]:
        """Unexplored neighbours worth proposing now: all, or those the model puts in the focus box."""
        pending = self._neighbours(genome)
        if not self._strict or not pending or self._model is None:
            return pending
        coef, limit, used = self._model
        X = self._one_hot(pending)
        predicted = X @ coef
        keep = np.all(predicted[:, used] <= limit[used], axis=1)
        return [g for g, k in zip(pending, keep) if k]

    def _one_hot(self, genomes: list[Genome]) -> np.ndarray:
        sizes = list(self.space.num_choices)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        X = np.zeros((len(genomes), int(sum(sizes)) + 1))
        X[:, -1] = 1.0
        G = np.array(genomes, dtype=int).reshape(len(genomes), -1)
        rows = np.arange(len(genomes))[:, None]
        X[rows, offsets[None, :] + G] = 1.0
        return X

    def _fit_model(
        self, F: np.ndarray, violation: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Additive (one-hot ridge) model of every objective, for the objectives it fits well.

        Returns the coefficients, the per-objective limit (the focus reference plus two residual
        standard deviations) and the mask of objectives whose in-sample R^2 is at least
        ``_MODEL_R2`` (latency on NAS-Bench-201: nearly additive over operations; error is not,
        and is never used to filter). ``None`` before the archive is large enough or when no
        objective qualifies.
        """
        if self._reference is None:
            return None
        finite = np.all(np.isfinite(F), axis=1) & (violation <= 0)
        X = self._one_hot([self.archive[i].genome for i in np.flatnonzero(finite)])
        if len(X) < 2 * X.shape[1]:
            return None
        Y = F[finite]
        coef = np.linalg.solve(X.T @ X + 1e-3 * np.eye(X.shape[1]), X.T @ Y)
        resid = Y - X @ coef
        var = Y.var(axis=0)
        r2 = 1.0 - resid.var(axis=0) / np.where(var > 0, var, 1.0)
        used = r2 >= _MODEL_R2
        if not used.any():
            return None
        return coef, self._reference + 2.0 * resid.std(axis=0), used

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
        if new and self.learn_moves and self._reference is not None:
            for e in new:
                key = self._move_of.pop(e.genome, None)
                if key is not None:
                    stat = self._move_stats.setdefault(key, [0, 0])
                    stat[0] += int(e.feasible and bool(np.all(np.asarray(e.vector) < self._reference)))
                    stat[1] += 1
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
        if not len(rows):
            return None
        main = np.percentile(rows, self.focus_percentile, axis=0)
        if self.alt_percentile >= 0:
            self._references = [main, np.percentile(rows, self.alt_percentile, axis=0)]
        return main


def _gain(front: np.ndarray, q: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume (to ``ref``) that the point ``q`` adds to the set ``front``."""
    if not np.all(q < ref):
        return 0.0
    box = float(np.prod(ref - q))
    clipped = np.maximum(front, q)  # the part of each point's dominated region inside q's box
    if clipped.shape[1] != 2:
        return box - hypervolume(clipped, ref)
    clipped = clipped[np.all(clipped < ref, axis=1)]
    if len(clipped) == 0:
        return box
    order = np.lexsort((clipped[:, 1], clipped[:, 0]))
    x, y = clipped[order, 0], clipped[order, 1]
    ymin = np.minimum.accumulate(y)
    right = np.append(x[1:], ref[0])
    covered = float(np.sum((right - x) * (ref[1] - ymin)))
    return box - covered
