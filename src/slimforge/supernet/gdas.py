"""GDAS: gradient-based search with a differentiable architecture sampler (Dong & Yang, CVPR 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from slimforge.errors import InvalidInputError
from slimforge.supernet._arch import ArchTrainer

__all__ = ["GDASTrainer"]


class GDASTrainer(ArchTrainer):
    """Each step samples one operation per edge by Gumbel-softmax (hard sample, straight-through
    gradient), updates the weights on a training batch, then samples again and updates alpha on a
    validation batch. The temperature falls linearly from ``tau_max`` to ``tau_min`` (10 -> 0.1) over
    the run.
    """

    name = "gdas"
    default_options: ClassVar[dict[str, Any]] = {"tau_max": 10.0, "tau_min": 0.1}

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        lo, hi = options["tau_min"], options["tau_max"]
        if (
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
            or not 0 < lo <= hi
        ):
            raise InvalidInputError(
                f"method 'gdas': need 0 < tau_min <= tau_max, got tau_min={lo!r}, tau_max={hi!r}"
            )

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature of the current step."""
        hi, lo = float(self.options["tau_max"]), float(self.options["tau_min"])
        return hi - (hi - lo) * self.step_count / max(self.total_steps - 1, 1)

    def _hard_sample(self) -> torch.Tensor:
        # Noise drawn on the CPU from the trainer's generator: the same run on any device.
        gumbel = -torch.empty(self.alpha.shape).exponential_(generator=self.generator).clamp_min_(1e-20).log()
        logits = (torch.log_softmax(self.alpha, dim=1) + gumbel.to(self.device)) / self.tau
        soft = torch.softmax(logits, dim=1)
        hard = torch.zeros_like(soft).scatter_(1, soft.detach().argmax(dim=1, keepdim=True), 1.0)
        return hard - soft.detach() + soft

    def _sampled_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._loss(self.supernet.forward_sampled(images, self._hard_sample()), labels)  # type: ignore[attr-defined]

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        assert val is not None  # step() enforces it (needs_val)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._sampled_loss(images, labels)
        loss.backward()
        self.alpha.grad = None
        self._update_weights()

        self.arch_optimizer.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(self._sampled_loss(*val), [self.alpha])
        self.alpha.grad = grad
        self.arch_optimizer.step()
        return loss.item()
