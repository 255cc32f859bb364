"""The base of the trainers with architecture parameters (DARTS, GDAS): alpha and its Adam optimiser."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, Supernet
from slimforge.supernet._trainer import SupernetTrainer, cosine_schedule
from slimforge.supernet.evaluate import EvalData

__all__ = ["ArchTrainer", "alpha_state", "init_alpha", "load_alpha_state"]

_RELAXED = ("arch_shape", "forward_mixture", "forward_sampled", "genome_from_weights")


class ArchTrainer(SupernetTrainer):
    """A trainer that also learns architecture parameters ``alpha`` (edges x operations).

    ``alpha`` starts at ``1e-3 * N(0, 1)`` (as in DARTS) and is trained by Adam (``arch_lr``,
    ``arch_weight_decay``, betas (0.5, 0.999) as in DARTS) with the same cosine decay as the weights.
    The supernet must support the relaxed forwards (:class:`~slimforge.spaces.nb201_supernet.NB201Supernet`).
    """

    needs_val = True
    holds_out_val = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        init_alpha(self, self.supernet.arch_shape)  # type: ignore[attr-defined]
        self.arch_scheduler = cosine_schedule(self.arch_optimizer, self.total_steps)

    @classmethod
    def check_supernet(cls, supernet: Supernet) -> None:
        if not all(hasattr(supernet, attr) for attr in _RELAXED):
            raise InvalidInputError(
                f"method {cls.name!r} needs a supernet with architecture weights (nb201); the "
                f"{supernet.space.name!r} supernet has none: use spos, fairnas or sandwich"
            )

    def derive(self, data: EvalData | None = None) -> Genome:
        """The strongest operation of each edge (argmax of alpha)."""
        return self.supernet.genome_from_weights(self.alpha)  # type: ignore[attr-defined]

    def _after_step(self) -> None:
        self.arch_scheduler.step()

    def _extra_state(self) -> dict[str, Any]:
        return alpha_state(self)

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        load_alpha_state(self, state)


def init_alpha(trainer: Any, shape: tuple[int, ...]) -> None:
    """Give ``trainer`` architecture weights ``alpha`` of ``shape`` (seeded, near zero, in the supernet's
    dtype) and their Adam ``arch_optimizer`` (DARTS' betas, Liu et al. 2019)."""
    init = 1e-3 * torch.randn(shape, generator=trainer.generator)
    dtype = next(trainer.supernet.parameters()).dtype
    trainer.alpha = nn.Parameter(init.to(device=trainer.device, dtype=dtype))
    trainer.arch_optimizer = torch.optim.Adam(
        [trainer.alpha],
        lr=trainer.config.arch_lr,
        betas=(0.5, 0.999),
        weight_decay=trainer.config.arch_weight_decay,
    )


def alpha_state(trainer: Any) -> dict[str, Any]:
    """The checkpoint state of a trainer's architecture weights ``alpha``, their optimizer and schedule."""
    return {
        "alpha": trainer.alpha.detach().cpu().clone(),
        "arch_optimizer": trainer.arch_optimizer.state_dict(),
        "arch_scheduler": trainer.arch_scheduler.state_dict(),
    }


def load_alpha_state(trainer: Any, state: dict[str, Any]) -> None:
    """Restore what :func:`alpha_state` saved into ``trainer``."""
    with torch.no_grad():
        trainer.alpha.copy_(state["alpha"].to(trainer.device))
    trainer.arch_optimizer.load_state_dict(state["arch_optimizer"])
    trainer.arch_scheduler.load_state_dict(state["arch_scheduler"])
