"""FBNet: differentiable architecture search with a latency lookup table (Wu et al., CVPR 2019)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from slimforge.errors import InvalidInputError
from slimforge.supernet._hardware_aware import HardwareAwareTrainer

__all__ = ["FBNetTrainer"]


class FBNetTrainer(HardwareAwareTrainer):
    """The architecture step samples one choice per gene by Gumbel-softmax (hard sample, straight-through
    gradient, as GDAS and FBNetV2 do; the paper runs the soft mixture of every choice, several times
    the compute) and minimises, in soft mode, FBNet's loss ``CE * beta * log(LAT)^gamma`` (its eq. 2,
    beta 0.2 and gamma 0.6 as the paper's alpha and beta) with LAT the expected latency.

    The paper's LAT is in ms of a phone (about 20-30, so log LAT > 1); the CIFAR networks here take about
    a millisecond, where log LAT is near 0 or negative. So LAT enters as ``LAT / ref`` and the factor is
    ``beta * (log(1 + LAT / ref) / log 2)^gamma``: beta at the reference, rising with latency as the
    paper's does. The temperature falls exponentially from ``tau_max`` to ``tau_min`` (the paper: 5.0,
    times exp(-0.045) per epoch). Hard mode replaces the factor by the Lagrangian of the limit
    (:class:`~slimforge.supernet._hardware_aware.HardwareAwareTrainer`).
    """

    name = "fbnet"
    default_options: ClassVar[dict[str, Any]] = {
        **HardwareAwareTrainer.common_options,
        "beta": 0.2,
        "gamma": 0.6,
        "tau_max": 5.0,
        "tau_min": 0.1,
    }

    @classmethod
    def _check_method_options(cls, options: dict[str, Any]) -> None:
        for key in ("beta", "gamma", "tau_max", "tau_min"):
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidInputError(f"method 'fbnet': {key} must be a number > 0, got {value!r}")
        if options["tau_min"] > options["tau_max"]:
            raise InvalidInputError(
                f"method 'fbnet': need tau_min <= tau_max, got {options['tau_min']!r} > {options['tau_max']!r}"
            )

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature of the current step (exponential decay)."""
        hi, lo = float(self.options["tau_max"]), float(self.options["tau_min"])
        return hi * (lo / hi) ** (self.step_count / max(self.total_steps - 1, 1))

    def _hard_sample(self) -> torch.Tensor:
        # Noise drawn on the CPU from the trainer's generator: the same run on any device.
        gumbel = -torch.empty(self.alpha.shape).exponential_(generator=self.generator).clamp_min_(1e-20).log()
        logits = (
            torch.log_softmax(self.logits(), dim=1) + gumbel.to(self.device, self.alpha.dtype)
        ) / self.tau
        soft = torch.softmax(logits, dim=1)
        hard = torch.zeros_like(soft).scatter_(1, soft.detach().argmax(dim=1, keepdim=True), 1.0)
        return hard - soft.detach() + soft

    def _arch_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        hard = self._hard_sample()
        if hasattr(self.supernet, "forward_gated"):
            active = [[int(c)] for c in hard.detach().argmax(dim=1).tolist()]
            logits = self.supernet.forward_gated(images, hard, active)  # type: ignore[operator]
        else:
            logits = self.supernet.forward_sampled(images, hard)  # type: ignore[operator]
        task = self._loss(logits, labels)
        ratio = self.expected_cost() / self.reference
        if self.options["mode"] == "hard":
            loss = task + self._cost_term(ratio)
        else:
            factor = (torch.log1p(ratio) / math.log(2.0)) ** float(self.options["gamma"])
            loss = task * float(self.options["beta"]) * factor
        self.arch_optimizer.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(loss, [self.alpha])
        self.alpha.grad = grad
        self.arch_optimizer.step()
        return float(ratio.detach())
