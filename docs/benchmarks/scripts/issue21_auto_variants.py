"""Issue 21, `auto` tuning: the experimental variants of focused Pareto local search (not shipped).

Every variant measured for BENCHMARKS.md "## Issue 21" (auto section) is a setting of
:class:`VariantPLS`, a subclass of the shipped
:class:`~slimforge.search.algorithms.pareto_local_search.ParetoLocalSearch` that overrides only
the methods an experimental setting changes, with every experimental setting off by default (so
``VariantAuto()`` is the previous ``auto``: ``weight_power=1``, no deepening).
``issue21_auto_tune.py`` registers ``VariantAuto`` (issue21_auto_variants_auto.py) as the
algorithm ``auto_variants`` and runs it on seeds 50-99.

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
the box, 0 = all; ``deepen=True, deepen_layers=2, weight_power=2`` is the shipped ``auto``, whose
``deepen=1`` counts the layers after the first). ``_MODEL_R2`` is 0.5 here; the ``model_filter``
row at R^2 >= 0.9 ran with 0.9.

Only ``second_share`` needs a copy of shipped code: its draw sits inside the proposal loop of
``_ask``, so :meth:`VariantPLS._ask_with_second` repeats that loop (used only when it is on).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms.pareto_local_search import _MAX_TRIES, ParetoLocalSearch
from slimforge.search.evaluation import Evaluation
from slimforge.search.indicators import hv_contributions, hypervolume
from slimforge.search.pareto import constrained_rank
from slimforge.spaces import Genome, SearchSpace

__all__ = ["EXPERIMENTAL", "VariantPLS"]

_MAX_ENCODINGS = 64
_MODEL_R2 = 0.5

#: The experimental settings beyond the shipped ones (``deepen`` is shipped, with another meaning).
EXPERIMENTAL = (
    "epsilon",
    "network_moves",
    "model_filter",
    "learn_moves",
    "second_share",
    "extreme_bonus",
    "alt_percentile",
    "deepen_layers",
)


class VariantPLS(ParetoLocalSearch):
    """Focused Pareto local search with the experimental settings (see the module docstring).

    ``deepen`` is a switch here and ``deepen_layers`` the number of box layers (0: all); they are
    kept in the shipped class's ``deepen`` attribute as the largest rank expanded plus one half
    (``inf`` for all layers, 0 when off), so the shipped ``_parents`` / ``_focus_layers`` apply it.
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
        super().__init__(
            space,
            seed=seed,
            n_init=n_init,
            batch_size=batch_size,
            p_local=p_local,
            floor=floor,
            focus_percentile=focus_percentile,
            weight_power=weight_power,
        )
        for label, value in (("epsilon", epsilon), ("second_share", second_share)):
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise InvalidInputError(f"{label} must be a number in [0, 1], got {value!r}")
        for label, flag in (
            ("network_moves", network_moves),
            ("deepen", deepen),
            ("model_filter", model_filter),
            ("learn_moves", learn_moves),
            ("extreme_bonus", extreme_bonus),
        ):
            if not isinstance(flag, bool):
                raise InvalidInputError(f"{label} must be true or false, got {flag!r}")
        self.epsilon = float(epsilon)
        self.network_moves = network_moves
        self.model_filter = model_filter
        self.learn_moves = learn_moves
        self.second_share = float(second_share)
        self.extreme_bonus = extreme_bonus
        self.alt_percentile = float(alt_percentile)
        self.deepen_layers = int(deepen_layers)
        self._deepen_on = deepen
        # Shipped: layers of rank r <= deepen. Here: rank r < deepen_layers (all when 0).
        self.deepen = (self.deepen_layers - 0.5 if self.deepen_layers else math.inf) if deepen else 0  # type: ignore[assignment]
        self._model: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._strict = False
        self._references: list = []
        self._asks = 0
        self._move_of: dict[Genome, tuple[int, int]] = {}
        self._move_stats: dict[tuple[int, int], list[int]] = {}
        self._bonus_points: np.ndarray | None = None

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["deepen"] = self._deepen_on
        return {**out, **{k: getattr(self, k) for k in EXPERIMENTAL}}

    # ------------------------------------------------------------------ ask
    def _ask(self) -> list[Genome]:
        if self._initialised and self.archive:
            if len(self._references) == 2:  # alt_percentile
                self._reference = self._references[self._asks % 2]
            self._asks += 1
            self._model = self._fit_model(self._F, self._violation) if self.model_filter else None
            self._strict = self._model is not None
            if self.second_share > 0:
                return self._ask_with_second()
        return super()._ask()

    def _ask_with_second(self) -> list[Genome]:
        """The shipped ``_ask`` proposal loop, with a ``second_share`` of expansions from the box's second layer."""
        F, violation = self._F, self._violation
        front_idx = self._front(F, violation)
        parents, weights = self._parents(F, violation, front_idx)
        second, second_w = self._second_layer(F, violation)
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
                if child is None:
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

    def _parents(
        self, F: np.ndarray, violation: np.ndarray, front_idx: np.ndarray
    ) -> tuple[list[int], np.ndarray | None]:
        """``epsilon``-front members first; with ``model_filter``, all neighbours once the filtered ones are spent."""
        parents, weights = self._parents_once(F, violation, front_idx)
        if not parents and self._strict:
            self._strict = False
            parents, weights = self._parents_once(F, violation, front_idx)
        return parents, weights

    def _parents_once(
        self, F: np.ndarray, violation: np.ndarray, front_idx: np.ndarray
    ) -> tuple[list[int], np.ndarray | None]:
        if self.epsilon > 0:
            near = self._near_front(F, violation, front_idx)
            if near is not None:
                return near
        return super()._parents(F, violation, front_idx)

    def _weights(self, F: np.ndarray, violation: np.ndarray, parents: list[int]) -> np.ndarray:
        if self.extreme_bonus:  # the points the shipped _weights normalises, for _powered
            _, lower, span = _frame(F)
            self._bonus_points = (F[parents] - lower) / span
        try:
            return super()._weights(F, violation, parents)
        finally:
            self._bonus_points = None

    def _powered(self, contrib: np.ndarray) -> np.ndarray:
        """``extreme_bonus``: inside ``_weights``, each objective's best contributing member gets the largest weight."""
        if self._bonus_points is not None:
            points = self._bonus_points
            inside = np.flatnonzero(contrib > 0)
            for k in range(points.shape[1]):
                contrib[inside[np.argmin(points[inside, k])]] = contrib.max()
        return super()._powered(contrib)

    def _second_layer(self, F: np.ndarray, violation: np.ndarray) -> tuple[list[int], np.ndarray | None]:
        """The second non-dominated layer inside the focus box (members with unexplored neighbours).

        Weighted by each member's contribution within its layer. Its members are the near-misses
        whose neighbourhoods hold front members no single-gene step from the front reaches.
        """
        if self._reference is None or np.any(violation > 0):
            return [], None
        finite, lower, span = _frame(F)
        inside = np.flatnonzero(finite & np.all(F < self._reference, axis=1))
        if len(inside) < 2:
            return [], None
        layer = inside[constrained_rank(F[inside], violation[inside]) == 1]
        open_ = np.array([bool(self._neighbours(self.archive[i].genome)) for i in layer], dtype=bool)
        if not open_.any():
            return [], None
        gains = self._powered(hv_contributions((F[layer] - lower) / span, (self._reference - lower) / span))
        return _spread([int(i) for i in layer[open_]], gains[open_], self.floor)

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
        finite, lower, span = _frame(F)
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
            if not self._neighbours(self.archive[i].genome):
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
        """Unexplored neighbours worth proposing now: all, or those the model puts in the focus box.

        With ``network_moves`` the neighbourhood is first filled from every encoding of the network.
        """
        if self.network_moves and genome not in self._unexplored:
            canon = (
                self.space.canonical(n) for g in self._encodings(genome) for n in self.space.neighbours(g)
            )
            self._unexplored[genome] = list(dict.fromkeys(c for c in canon if c != genome))
        pending = super()._neighbours(genome)
        if not self._strict or not pending or self._model is None:
            return pending
        coef, limit, used = self._model
        predicted = self._one_hot(pending) @ coef
        keep = np.all(predicted[:, used] <= limit[used], axis=1)
        return [g for g, k in zip(pending, keep) if k]

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
        """``learn_moves``: draw by each step's learnt rate of landing in the focus box."""
        if not self.learn_moves:
            return super()._take_neighbour(genome)
        choices = self._neighbours(genome)
        if not choices:
            return None
        keys = [self._move_key(genome, c) for c in choices]
        stats = [self._move_stats.get(key, [0, 0]) for key in keys]
        rates = np.array([(hits + 1) / (tries + 2) for hits, tries in stats])
        j = int(self.rng.choice(len(choices), p=rates / rates.sum()))
        self._move_of[choices[j]] = keys[j]
        return choices[j]  # no longer pending once _ask marks it proposed

    def _move_key(self, genome: Genome, child: Genome) -> tuple[int, int]:
        """The (old value, new value) of the single-gene step from ``genome`` that gives ``child``."""
        for i, n in enumerate(self.space.num_choices):
            for value in range(n):
                if value != genome[i]:
                    step = genome[:i] + (value,) + genome[i + 1 :]
                    if self.space.canonical(step) == child:
                        return (genome[i], value)
        return (-1, -1)

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

    # ----------------------------------------------------------------- tell
    def _tell(self, evaluations: list[Evaluation]) -> None:
        known = len(self.archive)
        super()._tell(evaluations)
        if self.learn_moves and self._reference is not None:
            for e in self.archive[known:]:  # the new ones
                key = self._move_of.pop(e.genome, None)
                if key is not None:
                    stat = self._move_stats.setdefault(key, [0, 0])
                    stat[0] += int(e.feasible and bool(np.all(np.asarray(e.vector) < self._reference)))
                    stat[1] += 1

    def _focus_reference(self, evaluations: list[Evaluation]) -> np.ndarray | None:
        main = super()._focus_reference(evaluations)
        if main is not None and self.alt_percentile >= 0:
            focus, self.focus_percentile = self.focus_percentile, self.alt_percentile
            try:
                self._references = [main, super()._focus_reference(evaluations)]
            finally:
                self.focus_percentile = focus
        return main


def _frame(F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with finite objectives, and the archive's per-objective minimum and range (1 where flat)."""
    finite = np.all(np.isfinite(F), axis=1)
    lower, upper = F[finite].min(axis=0), F[finite].max(axis=0)
    return finite, lower, np.where(upper > lower, upper - lower, 1.0)


def _spread(parents: list[int], gains: np.ndarray, floor: float) -> tuple[list[int], np.ndarray]:
    """Expansion weights: ``1 - floor`` by ``gains`` (uniform when unusable), ``floor`` uniform."""
    uniform = np.full(len(parents), 1.0 / len(parents))
    if not np.all(np.isfinite(gains)) or gains.sum() <= 0:
        return parents, uniform
    return parents, (1.0 - floor) * gains / gains.sum() + floor * uniform


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
