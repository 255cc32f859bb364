"""Model picks for ``auto``: a Gaussian process over genomes that proposes the networks the front lacks.

Where a space is small enough to list (NAS-Bench-201: 15,625 genomes, 8,765 distinct networks),
:class:`ModelPicks` fits a GP to every objective of everything evaluated so far and scores *every*
unevaluated network by the hypervolume its predicted point would add to the archive's front inside
the focus box. A network two single-gene steps from the front, through a dominated network that
local search never expands, is then one pick away if the model ranks it.

The kernel is the sum of a linear kernel on the one-hot genes (the additive trend: latency is
nearly a sum over operations) and ``exp(-theta * Hamming distance)`` (evaluated neighbours correct
the trend locally, where operations interact). Targets are the objectives' logarithms when all are
positive (multiplicative effects), standardised; ``theta`` and the noise are chosen by marginal
likelihood on a small grid every ``refit_every`` fits. Picks are greedy on the posterior mean, each
pick's predicted point joining the front before the next (a "Kriging believer" batch).

Chosen on NAS-Bench-201 with both Raspberry Pi 5 device tables, tuning seeds 50-99 only
(BENCHMARKS.md, issue 21). Two objectives only; with more, or a space too large to list, there are
no picks and ``auto`` is plain focused Pareto local search.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from slimforge.estimators.predictors import encode_genomes
from slimforge.search.pareto import pareto_mask
from slimforge.spaces import Genome, SearchSpace

__all__ = ["MAX_LISTED", "ModelPicks", "greedy_hv_picks", "hv_gains"]

#: the largest space (in genomes) whose networks are listed and scored.
MAX_LISTED = 50_000
_GRID = tuple((theta, noise) for theta in (0.5, 1.0, 2.0) for noise in (0.01, 0.1))


class ModelPicks:
    """The networks a GP over one-hot genomes predicts to fill the front's gaps (see the module docstring).

    Args:
        space: the search space (listed once, here, if ``space.size <= MAX_LISTED``).
        refit_every: choose the kernel's hyper-parameters again every this many fits.
    """

    def __init__(self, space: SearchSpace, refit_every: int = 5) -> None:
        self.refit_every = int(refit_every)
        self.genomes: list[Genome] = []
        self._index: dict[Genome, int] = {}
        self._X = np.zeros((0, 0))
        self._fits = 0
        self._hyper: list[tuple[float, float]] | None = None
        if space.size <= MAX_LISTED:
            listed = dict.fromkeys(
                space.canonical(g) for g in itertools.product(*(range(n) for n in space.num_choices))
            )
            self.genomes = list(listed)
            self._index = {g: i for i, g in enumerate(self.genomes)}
            # The one-hot columns of the predictors' encoding (its operation counts would change the kernel).
            self._X = encode_genomes(space, self.genomes, canonical=False)[:, : sum(space.num_choices)]

    @property
    def active(self) -> bool:
        """Whether the space was listed (else :meth:`picks` returns nothing)."""
        return bool(self.genomes)

    def picks(
        self,
        n: int,
        genomes: list[Genome],
        F: np.ndarray,
        violation: np.ndarray,
        reference: np.ndarray | None,
        proposed: Iterable[Genome],
    ) -> list[Genome]:
        """Up to ``n`` unproposed networks, by the hypervolume their predicted points add inside the box.

        Args:
            n: how many to pick at most (fewer where no network is predicted to add anything).
            genomes: the archive's genomes (canonical), one per row of ``F``.
            F: their objective values (minimised), rows aligned with ``genomes``.
            violation: their constraint violations (only feasible rows train the model).
            reference: the focus reference point (the box's upper corner).
            proposed: every genome proposed so far (never picked again).
        """
        scored = self.predicted(genomes, F, violation, reference, proposed) if n > 0 else None
        if scored is None:
            return []
        cand, points, front, ref = scored
        return [self.genomes[cand[j]] for j in greedy_hv_picks(points, front, ref, n)[0]]

    def predicted(
        self,
        genomes: list[Genome],
        F: np.ndarray,
        violation: np.ndarray,
        reference: np.ndarray | None,
        proposed: Iterable[Genome],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Every unproposed network's predicted point, in the archive's min-max frame (arguments as :meth:`picks`).

        Returns:
            ``(candidates, points, front, ref)``: indices into :attr:`genomes`, their predicted
            objective values, the archive's front and the focus reference, all normalised by the
            archive's feasible range; None where there is nothing to model (too few feasible rows,
            not two objectives, no reference, every network proposed).
        """
        ok = (violation <= 0) & np.all(np.isfinite(F), axis=1)
        if not self.active or reference is None or ok.sum() < 10 or F.shape[1] != 2:
            return None
        rows = [(k, self._index.get(genomes[k])) for k in np.flatnonzero(ok)]
        rows = [(k, j) for k, j in rows if j is not None]
        X, Y = self._X[[j for _, j in rows]], F[[k for k, _ in rows]]
        lower, upper = F[ok].min(axis=0), F[ok].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        Yn = (Y - lower) / span
        ref = (reference - lower) / span
        front = Yn[pareto_mask(Yn)]
        taken = np.zeros(len(self.genomes), dtype=bool)
        taken[[self._index[g] for g in proposed if g in self._index]] = True
        cand = np.flatnonzero(~taken)
        if len(cand) == 0:
            return None
        logged = bool(np.all(Y > 0))
        mean = self._predict(X, np.log(Y) if logged else Y, self._X[cand])
        points = ((np.exp(mean) if logged else mean) - lower) / span
        return cand, points, front, ref

    def _predict(self, X: np.ndarray, Y: np.ndarray, Xc: np.ndarray) -> np.ndarray:
        """Posterior mean of every objective at ``Xc`` (kernel: linear on one-hot + exp(-theta Hamming))."""
        from scipy.linalg import cho_factor, cho_solve

        refit = self._hyper is None or self._fits % max(self.refit_every, 1) == 0
        self._fits += 1
        genes = int(np.rint(X[0].sum()))
        S = X @ X.T
        D = np.rint(genes - S).astype(np.intp)  # Hamming distances
        lin = S / genes
        mu, sd = Y.mean(axis=0), Y.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        Yn = (Y - mu) / sd
        hyper = []
        alphas = []
        for k in range(Y.shape[1]):
            y = Yn[:, k]
            best = None
            for theta, noise in _GRID if refit else (self._hyper[k],):  # type: ignore[index]
                chol = cho_factor(lin + np.exp(-theta * np.arange(genes + 1))[D] + noise * np.eye(len(y)))
                a = cho_solve(chol, y)
                nll = 0.5 * y @ a + np.log(np.diag(chol[0])).sum()
                if best is None or nll < best[0]:
                    best = (nll, theta, noise, a)
            hyper.append((best[1], best[2]))
            alphas.append(best[3])
        self._hyper = hyper
        Dc = np.rint(genes - Xc @ X.T).astype(np.intp)
        linc = (genes - Dc) / genes
        out = np.zeros((len(Xc), Y.shape[1]))
        for k, ((theta, _), a) in enumerate(zip(hyper, alphas)):
            out[:, k] = ((linc + np.exp(-theta * np.arange(genes + 1))[Dc]) @ a) * sd[k] + mu[k]
        return out


def greedy_hv_picks(
    points: np.ndarray, front: np.ndarray, ref: np.ndarray, n: int
) -> tuple[list[int], np.ndarray]:
    """Up to ``n`` rows of ``points`` by greedy hypervolume gain, each pick joining ``front`` before the next.

    Returns:
        The picked rows (fewer than ``n`` where nothing adds hypervolume) and the front with them.
    """
    out: list[int] = []
    chosen = np.zeros(len(points), dtype=bool)
    for _ in range(n):
        gain = hv_gains(points, front, ref)
        gain[chosen] = 0.0
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        out.append(j)
        chosen[j] = True
        front = np.vstack([front, points[j]])
    return out, front


def hv_gains(points: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume (2 objectives, minimised, up to ``ref``) that each of ``points`` adds to ``front``."""
    front = front[np.all(front < ref, axis=1)]
    if len(front):
        front = front[np.argsort(front[:, 0], kind="stable")]
        front = front[front[:, 1] < np.minimum.accumulate(np.concatenate([[np.inf], front[:-1, 1]]))]
    # the front's staircase: for x in [a_k, b_k) the dominated region starts at height level_k
    a = np.concatenate([[-np.inf], front[:, 0]])
    b = np.concatenate([front[:, 0], [ref[0]]])
    level = np.concatenate([[ref[1]], front[:, 1]])
    width = np.clip(np.minimum(b[None, :], ref[0]) - np.maximum(a[None, :], points[:, :1]), 0.0, None)
    height = np.clip(np.minimum(level[None, :], ref[1]) - points[:, 1:2], 0.0, None)
    return (width * height).sum(axis=1)
