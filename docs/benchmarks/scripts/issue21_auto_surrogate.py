"""Issue 21, `auto` tuning: surrogate-screened focused Pareto local search (experimental, not shipped).

:class:`SurrogatePLS` is :class:`issue21_auto_variants.VariantPLS` plus one setting family: a
share ``surrogate_share`` of every batch (after the initial sample) is not a local-search move
but the unevaluated network that a model of the objectives, fitted on everything evaluated so
far, puts furthest into the gaps of the current front. The space is small enough to be listed
(NAS-Bench-201: 15,625 genomes, 8,765 canonical networks; the rule lists every canonical genome
when ``space.size <= _MAX_ENUMERATE``), so the model scores *every* unevaluated network, not only
single-gene neighbours: a front member two steps from the front through a dominated network is
one pick away if the model ranks it well.

Model (``surrogate_model``): per objective, a ridge regression (Bayesian linear regression with
a unit-variance Gaussian prior on the standardised features) on

* ``"onehot"``: the one-hot genes;
* ``"pair"``: one-hot genes and every pair of genes' joint value (gene i = a and gene j = b);
* ``"path"``: one-hot genes and the cell's input->output path encoding (NB-201: for each of the
  4 paths 0-3, 0-1-3, 0-2-3, 0-1-2-3 that carries no ``none`` edge, a count per operation
  sequence; the encoding of BANANAS, White et al. 2021), only for the nb201 space;
* ``"pairpath"``: all three;
* ``"forest"``: an extra-trees ensemble on the ``pairpath`` features (spread = tree spread).

Acquisition (``surrogate_acq``): ``"ts"`` Thompson sampling (one posterior draw of every
objective's weights per pick; for the forest one tree-subset), ``"lcb"`` mean minus
``surrogate_kappa`` standard deviations (bootstrap spread of ``surrogate_boot`` ridge fits).
The score of an unevaluated network is the hypervolume (to the focus reference, in the archive's
normalised objectives) that its predicted point adds to the archive's front; the batch's picks are
greedy, each pick's predicted mean joining the front before the next (Kriging believer). Networks
predicted to add nothing are never picked (the slot goes back to local search).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from issue21_auto_variants import EXPERIMENTAL, VariantPLS

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._ga import GA_DEFAULTS
from slimforge.search.algorithms._model_picks import hv_gains
from slimforge.search.algorithms.auto import Auto, _AdoptingPLS
from slimforge.spaces import Genome, SearchSpace

__all__ = ["SURROGATE", "SurrogateAuto", "SurrogatePLS", "features"]

_MAX_ENUMERATE = 50_000
SURROGATE = (
    "surrogate_share",
    "surrogate_model",
    "surrogate_acq",
    "surrogate_kappa",
    "surrogate_boot",
    "surrogate_every",
    "surrogate_box",
    "surrogate_alpha",
    "surrogate_log",
    "surrogate_start",
    "surrogate_order",
    "surrogate_order_kappa",
    "surrogate_min_gain",
    "surrogate_kappa_ucb",
)
_CACHE: dict[tuple, tuple[list[Genome], np.ndarray]] = {}

# NB-201 edges (gene order): (0,1) (0,2) (1,2) (0,3) (1,3) (2,3); the 4 input->output paths.
_NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def _path_features(G: np.ndarray, n_ops: int = 5) -> np.ndarray:
    """BANANAS path encoding over live ops (op 0 = none kills a path): 4 + 16 + 64 columns."""
    live = n_ops - 1
    blocks = []
    for length in (1, 2, 3):
        cols = np.zeros((len(G), live**length))
        for path in _NB201_PATHS:
            if len(path) != length:
                continue
            ops = G[:, list(path)]
            alive = np.all(ops > 0, axis=1)
            idx = np.zeros(len(G), dtype=int)
            for k in range(length):
                idx = idx * live + (ops[:, k] - 1).clip(0)
            rows = np.flatnonzero(alive)
            np.add.at(cols, (rows, idx[rows]), 1.0)
        blocks.append(cols)
    return np.hstack(blocks)


def features(space: SearchSpace, genomes: list[Genome], kind: str) -> np.ndarray:
    sizes = list(space.num_choices)
    G = np.array(genomes, dtype=int).reshape(len(genomes), -1)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    onehot = np.zeros((len(G), int(sum(sizes))))
    onehot[np.arange(len(G))[:, None], offsets[None, :] + G] = 1.0
    blocks = [onehot]
    if kind in ("pair", "pairpath", "forest"):
        for i, j in itertools.combinations(range(len(sizes)), 2):
            block = np.zeros((len(G), sizes[i] * sizes[j]))
            block[np.arange(len(G)), G[:, i] * sizes[j] + G[:, j]] = 1.0
            blocks.append(block)
    if kind in ("path", "pairpath", "forest") and getattr(space, "name", "") == "nb201":
        blocks.append(_path_features(G))
    X = np.hstack(blocks)
    return X[:, X.any(axis=0)] if len(X) > 1 else X


def _pool(space: SearchSpace, kind: str) -> tuple[list[Genome], np.ndarray]:
    key = (getattr(space, "name", ""), tuple(space.num_choices), kind)
    if key not in _CACHE:
        canon = dict.fromkeys(
            space.canonical(g) for g in itertools.product(*(range(n) for n in space.num_choices))
        )
        genomes = list(canon)
        _CACHE[key] = (genomes, features(space, genomes, kind))
    return _CACHE[key]


_gains = hv_gains  # the shipped one (slimforge.search.algorithms._model_picks)


class SurrogatePLS(VariantPLS):
    """:class:`VariantPLS` whose batches give ``surrogate_share`` of their slots to model picks."""

    name = "pls_surrogate"

    def __init__(
        self,
        space: SearchSpace,
        *,
        surrogate_share: float = 0.0,
        surrogate_model: str = "pairpath",
        surrogate_acq: str = "ts",
        surrogate_kappa: float = 1.0,
        surrogate_boot: int = 5,
        surrogate_every: int = 1,
        surrogate_box: str = "focus",
        surrogate_alpha: float = 1.0,
        surrogate_log: bool = False,
        surrogate_start: int = 0,
        surrogate_order: float = 0.0,
        surrogate_order_kappa: float = 1.0,
        surrogate_min_gain: float = 0.0,
        surrogate_kappa_ucb: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, **kwargs)
        if not 0.0 <= surrogate_share <= 1.0:
            raise InvalidInputError("surrogate_share must be in [0, 1]")
        self.surrogate_share = float(surrogate_share)
        self.surrogate_model = surrogate_model
        self.surrogate_acq = surrogate_acq
        self.surrogate_kappa = float(surrogate_kappa)
        self.surrogate_boot = int(surrogate_boot)
        self.surrogate_every = int(surrogate_every)
        self.surrogate_box = surrogate_box
        self.surrogate_alpha = float(surrogate_alpha)
        self.surrogate_log = bool(surrogate_log)
        self.surrogate_start = int(surrogate_start)
        self.surrogate_order = float(surrogate_order)
        self.surrogate_order_kappa = float(surrogate_order_kappa)
        self.surrogate_min_gain = float(surrogate_min_gain)
        self.surrogate_kappa_ucb = float(surrogate_kappa_ucb)
        self._order_state: dict | None = None
        self._srng = np.random.default_rng([int(kwargs.get("seed", 0)), 2101])
        self._pool_genomes: list[Genome] | None = None
        self._pool_X: np.ndarray | None = None
        self._pool_index: dict[Genome, int] = {}
        self._fit: Any = None
        self._fit_at = -1
        self._surrogate_asks = 0

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **{k: getattr(self, k) for k in SURROGATE}}

    def _ask(self) -> list[Genome]:
        self._order_state = None
        if self.surrogate_order > 0 and self._initialised and self.archive and len(self.archive) >= self.surrogate_start:
            self._order_state = self._fit_order_state()
        n = int(round(self.surrogate_share * self.batch_size))
        if len(self.archive) < self.surrogate_start:
            return super()._ask()
        if not (self._initialised and self.archive and n > 0 and self.space.size <= _MAX_ENUMERATE):
            return super()._ask()
        picks = self._surrogate_picks(n)
        for g in picks:
            self._proposed.add(g)
        size = self.batch_size
        self.batch_size = size - len(picks)
        try:
            rest = super()._ask() if self.batch_size > 0 else []
        finally:
            self.batch_size = size
        return picks + [g for g in rest if g not in set(picks)]

    # ------------------------------------------------------- neighbour order
    def _take_neighbour(self, genome: Genome) -> Genome | None:
        """``surrogate_order``: with that probability take the pending neighbour the GP rates best.

        Rating (normalised HV frame, focus reference): the optimistic point (posterior mean minus
        ``surrogate_order_kappa`` standard deviations per objective) scores the hypervolume it
        adds to the archive's front if it is inside the box and non-dominated, else minus the
        shift that would make it so (an additive epsilon): the nearest-to-useful first.
        """
        state = self._order_state
        if state is None or self.rng.random() >= self.surrogate_order:
            return super()._take_neighbour(genome)
        pending = self._neighbours(genome)
        if not pending:
            return None
        rows = [self._pool_index.get(g) for g in pending]
        if any(r is None for r in rows):
            return super()._take_neighbour(genome)
        score = self._order_scores(state, self._pool_X[rows])
        j = int(np.argmax(score))
        return pending.pop(j)

    def _ensure_pool(self) -> None:
        if self._pool_genomes is None:
            kind = {"forest": "pairpath", "gp": "onehot"}.get(self.surrogate_model, self.surrogate_model)
            self._pool_genomes, self._pool_X = _pool(self.space, kind)
            self._pool_index = {g: i for i, g in enumerate(self._pool_genomes)}

    def _fit_order_state(self) -> dict | None:
        from scipy.linalg import cho_solve

        self._ensure_pool()
        F, violation = self._F, self._violation
        ok = (violation <= 0) & np.all(np.isfinite(F), axis=1)
        if self._reference is None or ok.sum() < 10 or F.shape[1] != 2:
            return None
        idx = [self._pool_index.get(self.archive[i].genome) for i in np.flatnonzero(ok)]
        if any(j is None for j in idx):
            return None
        X, Y = self._pool_X[np.array(idx)], F[ok]
        logged = self.surrogate_log and bool(np.all(Y > 0))
        T = np.log(Y) if logged else Y
        refit = self._surrogate_asks % max(self.surrogate_every, 1) == 0 or not hasattr(self, "_order_hyper")
        self._surrogate_asks += 1
        genes, mu, sd, per = _gp_fit(X, T, self.surrogate_kappa, None if refit else self._order_hyper)
        self._order_hyper = [(theta, noise) for theta, noise, _, _ in per]
        per = [(theta, a, chol) for theta, _, a, chol in per]
        lower, upper = F[ok].min(axis=0), F[ok].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        Yn = (Y - lower) / span
        return {
            "X": X, "genes": genes, "per": per, "mu": mu, "sd": sd, "logged": logged,
            "lower": lower, "span": span, "ref": (self._reference - lower) / span,
            "front": Yn[_nondominated(Yn)], "cho_solve": cho_solve,
        }

    def _order_scores(self, state: dict, Xc: np.ndarray) -> np.ndarray:
        P = self._order_points(state, Xc, self.surrogate_order_kappa)
        front, ref = state["front"], state["ref"]
        eps_dom = np.clip((np.min(P[:, None, :] - front[None, :, :], axis=2)).max(axis=1), 0.0, None)
        eps_box = np.clip((P - ref[None, :]).max(axis=1), 0.0, None)
        eps = np.maximum(eps_dom, eps_box)
        gain = _gains(P, front, ref)
        return np.where(eps > 0, -eps, gain)

    def _ucb_picks(self, n: int, cand: np.ndarray) -> list[int]:
        """``surrogate_acq="ucb"`` with the GP: greedy picks by the HV gain of the optimistic point
        (mean - kappa sd) among the 300 candidates whose posterior mean scores best; each pick's mean
        joins the front before the next (the posterior variance of all 8,765 is too slow per ask)."""
        state = self._fit_order_state()
        if state is None:
            return []
        Xc = self._pool_X[cand]
        mean = self._order_points(state, Xc, 0.0, variance=False)
        front, ref = state["front"], state["ref"]
        eps = np.maximum(
            np.clip((np.min(mean[:, None, :] - front[None, :, :], axis=2)).max(axis=1), 0.0, None),
            np.clip((mean - ref[None, :]).max(axis=1), 0.0, None),
        )
        score = np.where(eps > 0, -eps, _gains(mean, front, ref))
        short = np.argsort(-score, kind="stable")[:300]
        optimistic = self._order_points(state, Xc[short], self.surrogate_kappa_ucb)
        picks: list[int] = []
        chosen = np.zeros(len(short), dtype=bool)
        for _ in range(n):
            gain = _gains(optimistic, front, ref)
            gain[chosen] = 0.0
            j = int(np.argmax(gain))
            if gain[j] <= 0:
                break
            picks.append(int(short[j]))
            chosen[j] = True
            front = np.vstack([front, mean[short[j]]])
        return picks

    def _order_points(self, state: dict, Xc: np.ndarray, kappa: float, variance: bool = True) -> np.ndarray:
        """GP points (normalised HV frame) of ``Xc``: posterior mean minus ``kappa`` sd per objective."""
        genes, X = state["genes"], state["X"]
        Sc = Xc @ X.T
        Dc = np.rint(genes - Sc).astype(np.intp)
        linc = self.surrogate_kappa * Sc / genes
        P = np.zeros((len(Xc), len(state["per"])))
        for k, (theta, a, chol) in enumerate(state["per"]):
            table = np.exp(-theta * np.arange(genes + 1))
            Kc = linc + table[Dc]
            mean = Kc @ a
            if variance and kappa:
                var = self.surrogate_kappa + 1.0 - np.einsum("ij,ji->i", Kc, state["cho_solve"](chol, Kc.T))
                mean = mean - kappa * np.sqrt(np.clip(var, 0.0, None))
            t = mean * state["sd"][k] + state["mu"][k]
            P[:, k] = np.exp(t) if state["logged"] else t
        return (P - state["lower"]) / state["span"]

    # ------------------------------------------------------------ surrogate
    def _surrogate_picks(self, n: int) -> list[Genome]:
        if self._pool_genomes is None:
            kind = {"forest": "pairpath", "gp": "onehot"}.get(self.surrogate_model, self.surrogate_model)
            self._pool_genomes, self._pool_X = _pool(self.space, kind)
            self._pool_index = {g: i for i, g in enumerate(self._pool_genomes)}
        F, violation = self._F, self._violation
        ok = (violation <= 0) & np.all(np.isfinite(F), axis=1)
        if self._reference is None or ok.sum() < 10 or F.shape[1] != 2:
            return []
        idx = [self._pool_index.get(self.archive[i].genome) for i in np.flatnonzero(ok)]
        rows = np.flatnonzero(ok)[[k for k, j in enumerate(idx) if j is not None]]
        train = np.array([j for j in idx if j is not None])
        X, Y = self._pool_X[train], F[rows]
        lower, upper = F[ok].min(axis=0), F[ok].max(axis=0)
        span = np.where(upper > lower, upper - lower, 1.0)
        Yn = (Y - lower) / span
        ref = (self._reference - lower) / span
        box = self.surrogate_box
        if box == "alternate":  # focus and wide boxes on alternate asks
            self._asks = getattr(self, "_asks", 0) + 1
            box = "wide" if self._asks % 2 else "focus"
        widen = {"wide": (0, 1), "errwide": (0,), "latwide": (1,)}.get(box, ())
        for k in widen:  # halfway between the focus reference and the archive's worst, per objective
            ref[k] = ref[k] + 0.5 * (1.0 - ref[k])
        front = Yn[_nondominated(Yn)]
        taken = np.zeros(len(self._pool_genomes), dtype=bool)
        taken[[self._pool_index[g] for g in self._proposed if g in self._pool_index]] = True
        cand = np.flatnonzero(~taken)
        if len(cand) == 0:
            return []
        if self.surrogate_model == "gp" and self.surrogate_acq == "ucb":
            return [self._pool_genomes[cand[j]] for j in self._ucb_picks(n, cand)]
        Xc = self._pool_X[cand]
        # fitted on log objectives when every one is positive (multiplicative effects), scored in the HV frame
        logged = self.surrogate_log and bool(np.all(Y > 0))
        raw = self._predict(X, np.log(Y) if logged else Y, Xc, n)
        preds = [((np.exp(P) if logged else P) - lower) / span for P in raw]
        mean = preds[-1]
        picks: list[int] = []
        chosen = np.zeros(len(cand), dtype=bool)
        for k in range(n):
            gain = _gains(preds[k], front, ref)
            gain[chosen] = 0.0
            j = int(np.argmax(gain))
            # a pick must promise surrogate_min_gain of the scoring box's area, else the slot goes back
            if gain[j] <= max(self.surrogate_min_gain * float(np.prod(np.clip(ref, 0.0, None))), 0.0):
                break
            picks.append(j)
            chosen[j] = True
            front = np.vstack([front, mean[j]])
        return [self._pool_genomes[cand[j]] for j in picks]

    def _predict(self, X: np.ndarray, Y: np.ndarray, Xc: np.ndarray, n: int) -> list[np.ndarray]:
        """``n`` acquisition predictions for the candidates, then their posterior mean (n + 1 arrays)."""
        if self.surrogate_model == "forest":
            return self._predict_forest(X, Y, Xc, n)
        if self.surrogate_model == "gp":
            return self._predict_gp(X, Y, Xc, n)
        from scipy.linalg import cho_factor, cho_solve

        mu_x, sd_x = X.mean(axis=0), X.std(axis=0)
        sd_x = np.where(sd_x > 0, sd_x, 1.0)
        Z = (X - mu_x) / sd_x
        mu_y = Y.mean(axis=0)
        Yc = Y - mu_y
        alpha = self.surrogate_alpha

        def predict(w: np.ndarray) -> np.ndarray:  # Zc @ w without forming Zc
            v = w / sd_x
            return Xc @ v - mu_x @ v

        out_mean = np.zeros((len(Xc), Y.shape[1]))
        draws = [np.zeros((len(Xc), Y.shape[1])) for _ in range(n)]
        # dual form: w = Z' (ZZ' + alpha I)^-1 y; one factorisation for every objective and draw
        chol = cho_factor(Z @ Z.T + alpha * np.eye(len(Z)))
        for k in range(Y.shape[1]):
            y = Yc[:, k]
            w = Z.T @ cho_solve(chol, y)
            resid = y - Z @ w
            s2 = max(float(resid.var()) * len(y) / max(len(y) - 1, 1), 1e-4 * float(y.var()) + 1e-12)
            out_mean[:, k] = predict(w) + mu_y[k]
            if self.surrogate_acq == "ts":
                # posterior N(w, s2 A^-1), A = Z'Z + alpha I: w + A^-1 (Z'e + sqrt(alpha) u), e, u ~ N(0, s2 I)
                for d in range(n):
                    e = self._srng.normal(size=len(y)) * np.sqrt(s2)
                    u = self._srng.normal(size=Z.shape[1]) * np.sqrt(s2)
                    rhs = Z.T @ e + np.sqrt(alpha) * u
                    dv = (rhs - Z.T @ cho_solve(chol, Z @ rhs)) / alpha
                    draws[d][:, k] = predict(w + dv) + mu_y[k]
            elif self.surrogate_acq == "mean":
                for d in range(n):
                    draws[d][:, k] = out_mean[:, k]
            else:  # lcb by bootstrap
                boots = []
                for _ in range(self.surrogate_boot):
                    b = self._srng.integers(len(y), size=len(y))
                    Zb, yb = Z[b], y[b]
                    Kb = Zb @ Zb.T + alpha * np.eye(len(Zb))
                    boots.append(predict(Zb.T @ np.linalg.solve(Kb, yb)) + mu_y[k])
                sd = np.std(boots, axis=0)
                for d in range(n):
                    draws[d][:, k] = out_mean[:, k] - self.surrogate_kappa * sd
        return draws + [out_mean]

    def _predict_gp(self, X: np.ndarray, Y: np.ndarray, Xc: np.ndarray, n: int) -> list[np.ndarray]:
        """GP per objective: kernel = additive (linear on one-hot genes) + exp(-theta * Hamming distance).

        The additive part is the global trend (latency is nearly additive over operations); the
        Hamming part lets a network's evaluated neighbours correct it locally (interactions the
        trend misses). theta and the noise by marginal likelihood on a small grid; y standardised.
        """
        refit = self._surrogate_asks % max(self.surrogate_every, 1) == 0 or not hasattr(self, "_gp_hyper")
        self._surrogate_asks += 1
        genes, mu, sd, per = _gp_fit(X, Y, self.surrogate_kappa, None if refit else self._gp_hyper)
        self._gp_hyper = [(theta, noise) for theta, noise, _, _ in per]
        Dc = np.rint(genes - Xc @ X.T).astype(np.intp)
        linc = self.surrogate_kappa * (genes - Dc) / genes
        out = np.zeros((len(Xc), Y.shape[1]))
        for k, (theta, _, a, _) in enumerate(per):
            table = np.exp(-theta * np.arange(genes + 1))
            out[:, k] = ((linc + table[Dc]) @ a) * sd[k] + mu[k]
        return [out] * n + [out]

    def _predict_forest(self, X: np.ndarray, Y: np.ndarray, Xc: np.ndarray, n: int) -> list[np.ndarray]:
        from sklearn.ensemble import ExtraTreesRegressor

        model = ExtraTreesRegressor(
            n_estimators=60, min_samples_leaf=2, max_features=0.3, random_state=int(self._srng.integers(2**31)), n_jobs=1
        )
        model.fit(X, Y)
        per_tree = np.stack([t.predict(Xc) for t in model.estimators_])  # (trees, cand, 2)
        mean = per_tree.mean(axis=0)
        if self.surrogate_acq == "ts":
            draws = []
            for _ in range(n):
                sub = self._srng.choice(len(per_tree), size=max(1, len(per_tree) // 10), replace=False)
                draws.append(per_tree[sub].mean(axis=0))
            return draws + [mean]
        if self.surrogate_acq == "mean":
            return [mean] * n + [mean]
        sd = per_tree.std(axis=0)
        return [mean - self.surrogate_kappa * sd] * n + [mean]


def _gp_fit(X: np.ndarray, Y: np.ndarray, kappa: float, hyper: list | None) -> tuple:
    """Per objective, the GP of ``SurrogatePLS._predict_gp`` on standardised ``Y``: (genes, mu, sd, fits).

    Each fit is (theta, noise, alpha = K^-1 y, Cholesky factor); theta and the noise come from
    ``hyper`` (one pair per objective) or, when it is None, by marginal likelihood on a small grid.
    """
    from scipy.linalg import cho_factor, cho_solve

    genes = int(round(X[0].sum()))
    S = X @ X.T
    D = np.rint(genes - S).astype(np.intp)  # Hamming distances
    lin = kappa * S / genes
    mu, sd = Y.mean(axis=0), Y.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Yn = (Y - mu) / sd
    fits = []
    for k in range(Y.shape[1]):
        y = Yn[:, k]
        grid = [(t, e) for t in (0.5, 1.0, 2.0) for e in (0.01, 0.1)] if hyper is None else [hyper[k]]
        best = None
        for theta, noise in grid:
            table = np.exp(-theta * np.arange(genes + 1))
            chol = cho_factor(lin + table[D] + noise * np.eye(len(y)))
            a = cho_solve(chol, y)
            nll = 0.5 * y @ a + np.log(np.diag(chol[0])).sum()
            if best is None or nll < best[0]:
                best = (nll, theta, noise, a, chol)
        fits.append(best[1:])
    return genes, mu, sd, fits


def _nondominated(P: np.ndarray) -> np.ndarray:
    dom = np.all(P[None, :, :] <= P[:, None, :], axis=2) & np.any(P[None, :, :] < P[:, None, :], axis=2)
    return ~dom.any(axis=1)


class _AdoptingSurrogatePLS(SurrogatePLS, _AdoptingPLS):
    model_share = 0.0  # the shipped auto's model picks stay off: this script has its own


class SurrogateAuto(Auto):
    """``auto`` (no NSGA-II phase) over :class:`SurrogatePLS`; defaults = the shipped ``auto`` local phase."""

    name = "auto_surrogate"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        pop_size: int = GA_DEFAULTS["pop_size"],
        batch_size: int = 10,
        p_local: float = 0.9,
        floor: float = 0.0,
        focus_percentile: float = 60.0,
        weight_power: float = 2.0,
        deepen: bool = True,
        deepen_layers: int = 2,
        surrogate_share: float = 0.0,
        surrogate_model: str = "pairpath",
        surrogate_acq: str = "ts",
        surrogate_kappa: float = 1.0,
        surrogate_boot: int = 5,
        surrogate_every: int = 1,
        surrogate_box: str = "focus",
        surrogate_alpha: float = 1.0,
        surrogate_log: bool = False,
        surrogate_start: int = 0,
        surrogate_order: float = 0.0,
        surrogate_order_kappa: float = 1.0,
        surrogate_min_gain: float = 0.0,
        surrogate_kappa_ucb: float = 1.0,
    ) -> None:
        experimental = {k: v for k, v in locals().items() if k.startswith("surrogate_")}
        local = {"batch_size": batch_size, "p_local": p_local, "floor": floor, "focus_percentile": focus_percentile}
        super().__init__(space, seed=seed, pop_size=pop_size, weight_power=weight_power, deepen=0, **local)
        self._local = _AdoptingSurrogatePLS(
            space,
            seed=self._local.seed,
            n_init=pop_size,
            weight_power=weight_power,
            deepen=deepen,
            deepen_layers=deepen_layers,
            **experimental,
            **local,
        )

    def settings(self) -> dict[str, Any]:
        local = self._local.settings()
        return {**super().settings(), **{k: local[k] for k in EXPERIMENTAL + SURROGATE if k in local}}
