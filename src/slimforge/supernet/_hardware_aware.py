"""The base of the hardware-aware differentiable trainers (FBNet, ProxylessNAS): alpha over every
gene's choices, the expected cost the architecture step sees, and the soft or hard latency constraint.

Both trainers alternate a weight step on one path drawn from ``softmax(alpha)`` (a training batch)
with an architecture step on a validation batch whose loss adds a differentiable cost term: the
expected latency ``E[LAT] = base + sum_i sum_c softmax(alpha_i)_c * LAT[i, c]`` from the device's
lookup table or predictor (:mod:`slimforge.supernet._costs`). Modes:

- ``soft``: the method's own penalty (FBNet's multiplicative ``CE * beta * log(...)^gamma``,
  ProxylessNAS's additive ``CE + lambda * E[LAT] / ref``), with ``ref`` the limit when one is given,
  else the expected cost of the uniform distribution;
- ``hard`` (HardCoRe-NAS, Nayman et al., NeurIPS 2021, in spirit): the constraint ``E[LAT] <= limit``
  kept by ``constraint``: ``project`` (the default) moves alpha after every architecture step to the
  nearest distribution (in KL divergence) that meets the limit, ``alpha_ic -= lam * LAT[i, c]`` with the
  smallest ``lam >= 0`` that fits (the I-projection onto a linear constraint is this exponential
  tilting), so every step's distribution meets it, as HardCoRe-NAS's projected updates do; ``dual``
  adds ``mu * (E[LAT] / limit - 1)`` to the loss with a Lagrange multiplier ``mu >= 0`` raised by dual
  ascent (``mu += dual_lr * (E[LAT] / limit - 1)``, clipped at 0), which meets it only on average and
  overshoots while ``mu`` winds down. Either way the derived architecture is projected onto the
  feasible set: the most probable genome whose cost is at most the limit
  (:meth:`~slimforge.supernet._costs.ArchCosts.project`), so it never exceeds the limit as the cost
  model counts it.

Derivation (``derive``): ``probable`` takes that most probable genome. Under a binding limit it is
the network of each gene's cheapest choice whenever alpha is still flat (the tilt that keeps
``E[LAT]`` at the limit makes the cheapest choice of every gene its most probable one), so the budget
between that network and the limit is left unused. ``scored`` (the default in hard mode: ``auto``)
draws ``derive_samples`` genomes from the trained distribution, moves each one over the limit to the
feasible genome that keeps most of its choices, and returns the one of these and the most probable
genome that scores best with the supernet's inherited weights on the held-out validation part, as
RSPS and DARTS-PT select by the supernet's accuracy. Soft mode keeps ``probable`` (alpha carries the
trade-off there).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, Supernet
from slimforge.supernet._arch import alpha_state, init_alpha, load_alpha_state
from slimforge.supernet._costs import ArchCosts, check_limit, load_arch_costs
from slimforge.supernet._trainer import SupernetTrainer, cosine_schedule
from slimforge.supernet.evaluate import EvalData, evaluate_many

__all__ = ["CONSTRAINTS", "DERIVATIONS", "MODES", "HardwareAwareTrainer"]

MODES = ("soft", "hard")
#: how hard mode keeps the expected latency under the limit.
CONSTRAINTS = ("project", "dual")
#: how the architecture is derived at the end: ``auto`` is ``scored`` in hard mode, else ``probable``.
DERIVATIONS = ("auto", "probable", "scored")
_MASKED = -1e9  # logit of a choice a gene does not have: softmax gives it exactly 0
_KEEP = 1e3  # the bonus of a sample's own choices when it is moved under the limit: keep as many as fit


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class HardwareAwareTrainer(SupernetTrainer):
    """Alpha of shape (genes, most choices) with the choices a gene lacks masked out, trained by Adam
    (``arch_lr``, ``arch_weight_decay``, betas (0.5, 0.999), cosine decay) on a loss with an expected
    latency term. Trains the NAS-Bench-201 supernet and the layer-wise ones (``mbv2``, ``shufflenet``,
    separate weights).

    Options common to both methods: ``latency`` (``macs``, ``lut:FILE``, ``predictor:FILE``,
    ``table:FILE``), ``limit_ms`` (the latency limit, None for none), ``mode`` (``soft`` or
    ``hard``, which needs a limit), ``constraint`` (how hard mode keeps it: ``project`` or ``dual``),
    ``dual_lr`` (the multiplier's step under ``constraint=dual``), ``warmup`` (the
    first fraction of the steps trains weights only, as FBNet's warm-up epochs), ``derive``
    (:data:`DERIVATIONS`) and ``derive_samples`` (the genomes ``scored`` draws).
    """

    needs_val = True
    holds_out_val = True
    #: the options of both methods; a subclass's ``default_options`` start with these.
    common_options: ClassVar[dict[str, Any]] = {
        "latency": "macs",
        "limit_ms": None,
        "mode": "soft",
        "constraint": "project",
        "dual_lr": 1.0,
        "warmup": 0.0,
        "derive": "auto",
        "derive_samples": 50,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.costs: ArchCosts = load_arch_costs(self.options["latency"], self.space)
        limit = self.options["limit_ms"]
        if limit is not None:
            check_limit(self.costs, float(limit))
        choices = list(self.space.num_choices)
        shape = (len(choices), max(choices))
        self.mask = torch.tensor([[c < n for c in range(shape[1])] for n in choices], device=self.device)
        init_alpha(self, shape)
        #: steps that train the weights only; the architecture's cosine spans the steps after them.
        self.warmup_steps = math.ceil(float(self.options["warmup"]) * self.total_steps)
        self.arch_scheduler = cosine_schedule(self.arch_optimizer, self.total_steps - self.warmup_steps)
        uniform = self.mask.to(self.alpha.dtype) / self.mask.sum(dim=1, keepdim=True)
        #: what the cost term divides by: the limit, or the uniform distribution's expected cost.
        self.reference = float(limit) if limit is not None else float(self.costs.expected(uniform))
        #: the hard mode's Lagrange multiplier.
        self.dual = 0.0

    # ------------------------------------------------------------------ options and supernets
    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        name = cls.name
        if options["mode"] not in MODES:
            raise InvalidInputError(f"method {name!r}: mode must be soft or hard, got {options['mode']!r}")
        limit = options["limit_ms"]
        if limit is not None and (not _number(limit) or limit <= 0):
            raise InvalidInputError(f"method {name!r}: limit_ms must be a number > 0 (ms), got {limit!r}")
        if options["mode"] == "hard" and limit is None:
            raise InvalidInputError(f"method {name!r}: mode=hard needs a latency limit, e.g. limit_ms=2.5")
        if not isinstance(options["latency"], str) or not options["latency"]:
            raise InvalidInputError(
                f"method {name!r}: latency must be macs, lut:FILE, predictor:FILE or table:FILE"
            )
        if options["latency"] == "macs" and limit is not None:
            raise InvalidInputError(
                f"method {name!r}: limit_ms needs a latency in ms (latency=lut:FILE, predictor:FILE or "
                "table:FILE); latency=macs counts MACs"
            )
        if options["constraint"] not in CONSTRAINTS:
            raise InvalidInputError(
                f"method {name!r}: constraint must be project or dual, got {options['constraint']!r}"
            )
        if not _number(options["dual_lr"]) or options["dual_lr"] <= 0:
            raise InvalidInputError(
                f"method {name!r}: dual_lr must be a number > 0, got {options['dual_lr']!r}"
            )
        warmup = options["warmup"]
        if not _number(warmup) or not 0 <= warmup < 1:
            raise InvalidInputError(f"method {name!r}: warmup must be a number in [0, 1), got {warmup!r}")
        if options["derive"] not in DERIVATIONS:
            raise InvalidInputError(
                f"method {name!r}: derive must be auto, probable or scored, got {options['derive']!r}"
            )
        samples = options["derive_samples"]
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise InvalidInputError(f"method {name!r}: derive_samples must be an integer >= 1, got {samples!r}")
        cls._check_method_options(options)

    @classmethod
    def _check_method_options(cls, options: dict[str, Any]) -> None:
        """Raise InvalidInputError for a method-specific option out of range."""

    @classmethod
    def check_supernet(cls, supernet: Supernet) -> None:
        if not (hasattr(supernet, "forward_gated") or hasattr(supernet, "forward_sampled")):
            raise InvalidInputError(
                f"method {cls.name!r} needs a supernet with a relaxed forward (nb201, or mbv2/shufflenet with "
                f"separate weights); the {supernet.space.name!r} supernet has none: use spos or sandwich"
            )

    # ------------------------------------------------------------------ the distribution
    def logits(self) -> torch.Tensor:
        """Alpha with the choices a gene lacks set to a huge negative logit."""
        return self.alpha.masked_fill(~self.mask, _MASKED)

    def probs(self) -> torch.Tensor:
        """Per gene, the probability of each choice (0 on choices a gene lacks)."""
        return torch.softmax(self.logits(), dim=1)

    def expected_cost(self) -> torch.Tensor:
        """The expected cost under ``probs()`` (in ``costs.unit``), differentiable in alpha."""
        return self.costs.expected(self.probs())

    def derive(self, data: EvalData | None = None) -> Genome:
        """The most probable choice of every gene (in hard mode, the most probable genome within the
        limit); with ``derive=scored`` and validation ``data``, the best scoring of that genome and
        ``derive_samples`` feasible genomes drawn from the distribution."""
        scores = torch.log_softmax(self.logits(), dim=1).detach().cpu().numpy().astype(np.float64)
        genome = tuple(int(v) for v in scores.argmax(axis=1))
        hard = self.options["mode"] == "hard"
        if hard:
            genome = self.costs.project(scores, float(self.options["limit_ms"]))
        how = self.options["derive"]
        if how == "auto":
            how = "scored" if hard else "probable"
        if how == "probable" or data is None:
            return self.space.validate(genome)
        candidates = [self.space.validate(genome), *self._feasible_samples(scores)]
        candidates = list(dict.fromkeys(candidates))  # first occurrence kept: ties go to the most probable
        accuracy = evaluate_many(self.supernet, candidates, data)
        return candidates[max(range(len(candidates)), key=lambda k: (accuracy[k], -k))]

    def _feasible_samples(self, scores: np.ndarray) -> list[Genome]:
        """``derive_samples`` genomes drawn from the distribution (seeded by the run's seed, so ``derive``
        is repeatable), each one over the limit replaced by the feasible genome that keeps most of its
        choices (the projection of its one-hot, with alpha breaking ties)."""
        rng = np.random.default_rng([int(self.config.seed), 2])
        probs = np.exp(scores)
        limit = self.options["limit_ms"]
        out = []
        for _ in range(int(self.options["derive_samples"])):
            sample = [int(rng.choice(len(row), p=row / row.sum())) for row in probs]
            if limit is not None and self.costs.of(sample) > float(limit) + 1e-9:
                keep = scores.copy()
                keep[np.arange(len(sample)), sample] += _KEEP
                sample = list(self.costs.project(keep, float(limit)))
            out.append(self.space.validate(tuple(sample)))
        return out

    # ------------------------------------------------------------------ the step
    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        assert val is not None  # step() enforces it (needs_val)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.supernet(images, self._sample_genome_from_alpha()), labels)
        loss.backward()
        self._update_weights()
        if self.step_count >= self.warmup_steps:
            ratio = self._arch_step(*val)
            if self.options["mode"] == "hard" and self.options["constraint"] == "dual":
                self.dual = max(0.0, self.dual + float(self.options["dual_lr"]) * (ratio - 1.0))
            elif self.options["mode"] == "hard":
                self._project_to_limit()
        return loss.item()

    @abstractmethod
    def _arch_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Update alpha on a validation batch; return E[LAT] / reference after the update's forward."""

    def _cost_term(self, ratio: torch.Tensor) -> torch.Tensor:
        """The hard mode's Lagrangian term ``mu * (E[LAT]/limit - 1)`` (0 under ``constraint=project``,
        where ``mu`` stays 0); soft modes override the loss."""
        return self.dual * (ratio - 1.0)

    @torch.no_grad()
    def _project_to_limit(self) -> None:
        """Tilt alpha by ``-lam * LAT`` with the smallest ``lam >= 0`` whose expected latency fits the limit."""
        limit = float(self.options["limit_ms"])
        table = self.costs.padded(self.alpha.device, torch.float64)
        alpha = self.alpha.detach().double()

        def expected(lam: float) -> float:
            logits = (alpha - lam * table).masked_fill(~self.mask, _MASKED)
            return float(self.costs.expected(torch.softmax(logits, dim=1)))

        if expected(0.0) <= limit:
            return
        lo, hi = 0.0, 1.0
        while expected(hi) > limit and hi < 1e9:
            lo, hi = hi, hi * 4
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if expected(mid) <= limit else (mid, hi)
        self.alpha.sub_((hi * table).to(self.alpha.dtype))

    def _sample_genome_from_alpha(self) -> Genome:
        """One choice per gene drawn from ``probs()`` with the trainer's generator (the weight step's path)."""
        probs = self.probs().detach().cpu().double()
        return tuple(int(v) for v in torch.multinomial(probs, 1, generator=self.generator).view(-1).tolist())

    def _run_gated(self, x: torch.Tensor, gates: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
        if hasattr(self.supernet, "forward_gated"):
            return self.supernet.forward_gated(x, gates, active)  # type: ignore[operator]
        # NAS-Bench-201: the mixture runs every operation of every edge with the given weights.
        return self.supernet.forward_mixture(x, gates)  # type: ignore[operator]

    def _after_step(self) -> None:
        if self.step_count >= self.warmup_steps:  # step() counts this step after the hook
            self.arch_scheduler.step()

    def _extra_state(self) -> dict[str, Any]:
        return {**alpha_state(self), "dual": self.dual}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        load_alpha_state(self, state)
        self.dual = float(state["dual"])
