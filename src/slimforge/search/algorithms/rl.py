"""An RL controller: REINFORCE on a per-gene categorical policy with MnasNet's latency-aware reward.

The controller (Williams 1992; as a NAS controller Zoph & Le 2017) keeps one vector of logits
per gene, so it works on every space (a genome is a list of choice indices, ``space.num_choices``).
Each ask samples ``batch_size`` genomes from the softmax policy; each tell rewards them with
MnasNet's multi-objective reward (Tan et al., CVPR 2019)::

    R(m) = ACC(m) * (LAT(m) / T) ** w

with ``w`` = ``alpha`` when LAT(m) <= T and ``beta`` otherwise: ``reward="soft"`` uses
alpha = beta = ``w`` (-0.07, the paper's setting, so that a network twice as fast may be about
5% less accurate for the same reward); ``reward="hard"`` uses alpha = 0, beta = -1 (no reward for
being faster than T, a steep penalty above it). ACC is the accuracy as a fraction (the
``accuracy`` metric in %, or 100 - ``error``), LAT the latency metric, T ``target_latency``.
The policy gradient uses the advantage R - b over a moving-average baseline b (decay
``baseline_decay``) and Adam on the logits; infeasible or failed candidates get reward 0.

The engine answers a network it has evaluated before from memory, so as the policy sharpens
most samples cost nothing; the search ends when the budget is spent or, once the policy has
converged, when rounds stop bringing new networks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.search.algorithms._base import Algorithm, check_count
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["ReinforceController", "mnasnet_reward"]

REWARDS = ("soft", "hard")


def mnasnet_reward(
    accuracy: float, latency: float, target: float, *, reward: str = "soft", w: float = -0.07
) -> float:
    """MnasNet's reward ``accuracy * (latency / target) ** w`` (``w`` per :mod:`rl`'s docstring)."""
    exponent = w if reward == "soft" else (0.0 if latency <= target else -1.0)
    return float(accuracy * (latency / target) ** exponent)


class ReinforceController(Algorithm):
    """REINFORCE with a moving-average baseline over per-gene categorical distributions.

    Args:
        space: the search space.
        seed: random seed.
        target_latency: T, in the latency metric's unit; None: the median latency of the first batch.
        reward: ``soft`` (exponent ``w`` everywhere) or ``hard`` (0 at or below T, -1 above).
        w: the soft exponent, in (-1, 0].
        batch_size: genomes sampled per ask (one policy update per batch).
        learning_rate: Adam step size on the logits.
        baseline_decay: weight of the old baseline in the moving average, in [0, 1).
        entropy_weight: weight of the policy's entropy in the objective (keeps it exploring).
        accuracy_metric: metric holding the accuracy in % (``error`` = 100 - accuracy is used when absent).
        latency_metric: metric holding the latency.
    """

    name = "rl"
    _settings = (
        "target_latency",
        "reward",
        "w",
        "batch_size",
        "learning_rate",
        "baseline_decay",
        "entropy_weight",
        "accuracy_metric",
        "latency_metric",
    )

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        target_latency: float | None = None,
        reward: str = "soft",
        w: float = -0.07,
        batch_size: int = 10,
        learning_rate: float = 0.05,
        baseline_decay: float = 0.9,
        entropy_weight: float = 0.01,
        accuracy_metric: str = "accuracy",
        latency_metric: str = "latency_ms",
    ) -> None:
        super().__init__(space, seed=seed)
        check_count("batch_size", batch_size, space, minimum=1, default=10)
        if reward not in REWARDS:
            raise InvalidInputError(
                f"reward must be 'soft' or 'hard' (MnasNet's two settings), got {reward!r}"
            )
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not -1.0 < w <= 0.0:
            raise InvalidInputError(
                f"w {w!r} is outside (-1, 0]; MnasNet's soft setting is w=-0.07 (use reward=hard for -1)"
            )
        if target_latency is not None and (
            isinstance(target_latency, bool)
            or not isinstance(target_latency, (int, float))
            or not np.isfinite(target_latency)
            or target_latency <= 0
        ):
            raise InvalidInputError(f"target_latency must be a positive number, got {target_latency!r}")
        for label, value, low, high in (
            ("learning_rate", learning_rate, 0.0, 10.0),
            ("baseline_decay", baseline_decay, 0.0, 1.0),
            ("entropy_weight", entropy_weight, 0.0, 10.0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
                raise InvalidInputError(f"{label} must be a number in [{low:g}, {high:g}), got {value!r}")
        if learning_rate <= 0:
            raise InvalidInputError(f"learning_rate must be positive, got {learning_rate!r}")
        self.target_latency = None if target_latency is None else float(target_latency)
        self.reward = reward
        self.w = float(w)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.entropy_weight = float(entropy_weight)
        self.accuracy_metric = str(accuracy_metric)
        self.latency_metric = str(latency_metric)
        self.logits = [np.zeros(n) for n in space.num_choices]
        self._adam = [(np.zeros(n), np.zeros(n)) for n in space.num_choices]
        self._step = 0
        self.baseline: float | None = None
        self._target = self.target_latency
        self._asked: list[Genome] = []

    def check_run(
        self, *, budget: int | None = None, lower_bounds: Mapping[str, float] | None = None
    ) -> None:
        cheapest = (lower_bounds or {}).get(self.latency_metric)
        if self.target_latency is not None and cheapest is not None and self.target_latency < cheapest:
            raise InvalidInputError(
                f"target_latency {self.target_latency:g} is below the cheapest network's "
                f"{self.latency_metric} {cheapest:g}; set target_latency to at least {cheapest:g}"
            )

    def probabilities(self) -> list[np.ndarray]:
        """The policy: one probability vector per gene."""
        return [_softmax(z) for z in self.logits]

    # ------------------------------------------------------------------ ask
    def _ask(self) -> list[Genome]:
        probs = self.probabilities()
        self._asked = [
            tuple(int(self.rng.choice(len(p), p=p)) for p in probs) for _ in range(self.batch_size)
        ]
        return list(self._asked)

    # ----------------------------------------------------------------- tell
    def _tell(self, evaluations: list[Evaluation]) -> None:
        told = {e.genome: e for e in evaluations}
        pairs = [(g, told.get(self.space.canonical(g))) for g in self._asked]
        pairs = [(g, e) for g, e in pairs if e is not None]
        if not pairs:
            return
        if self._target is None:
            latencies = [self._latency(e) for _, e in pairs]
            finite = [v for v in latencies if np.isfinite(v) and v > 0]
            self._target = float(np.median(finite)) if finite else 1.0
        rewards = np.array([self._reward(e) for _, e in pairs])
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        advantages = rewards - self.baseline
        probs = self.probabilities()
        for i, p in enumerate(probs):
            grad = np.zeros_like(p)
            for (genome, _), adv in zip(pairs, advantages):
                onehot = np.zeros_like(p)
                onehot[genome[i]] = 1.0
                grad += adv * (onehot - p)
            grad /= len(pairs)
            if self.entropy_weight:
                # d(entropy)/d(logits) = -p * (log p + entropy)
                logp = np.log(np.maximum(p, 1e-12))
                grad += self.entropy_weight * (-p * (logp - (p * logp).sum()))
            self.logits[i] = self.logits[i] + self._adam_step(i, grad)
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * float(
            rewards.mean()
        )

    def _adam_step(self, i: int, grad: np.ndarray, beta1: float = 0.9, beta2: float = 0.999) -> np.ndarray:
        if i == 0:
            self._step += 1
        m, v = self._adam[i]
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        self._adam[i] = (m, v)
        m_hat = m / (1 - beta1**self._step)
        v_hat = v / (1 - beta2**self._step)
        return self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)  # ascent: maximise reward

    def _reward(self, e: Evaluation) -> float:
        if not e.feasible:
            return 0.0
        accuracy, latency = self._accuracy(e), self._latency(e)
        if not (np.isfinite(accuracy) and np.isfinite(latency)) or latency <= 0:
            return 0.0
        return mnasnet_reward(max(accuracy, 0.0), latency, self._target, reward=self.reward, w=self.w)

    def _accuracy(self, e: Evaluation) -> float:
        values = {**e.metrics, **e.objectives}
        if self.accuracy_metric in values:
            return float(values[self.accuracy_metric]) / 100.0
        if self.accuracy_metric == "accuracy" and "error" in values:
            return (100.0 - float(values["error"])) / 100.0
        raise InvalidInputError(
            f"rl: the evaluations have no accuracy metric {self.accuracy_metric!r} (nor 'error'); "
            f"their metrics: {', '.join(sorted(values))}; set accuracy_metric=NAME (in %)"
        )

    def _latency(self, e: Evaluation) -> float:
        values = {**e.metrics, **e.objectives}
        if self.latency_metric not in values:
            raise InvalidInputError(
                f"rl: the evaluations have no latency metric {self.latency_metric!r}; "
                f"their metrics: {', '.join(sorted(values))}; set latency_metric=NAME"
            )
        return float(values[self.latency_metric])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()
