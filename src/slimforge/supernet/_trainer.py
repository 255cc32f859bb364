"""The supernet-trainer base: optimiser, cosine schedule, path-sampling generator and checkpoint state.

A trainer owns everything that changes during training except the supernet's own weights and
buffers: the optimisers, their schedules, the generator that samples paths (and Gumbel noise), the
step counter and, for DARTS/GDAS, the architecture parameters. ``state_dict()`` holds only tensors,
numbers, strings and containers of them, so it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace, Supernet
from slimforge.supernet._build import make_supernet
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData
from slimforge.training.distributed import DistContext

__all__ = ["SupernetTrainer", "cosine_schedule", "linear_schedule", "soft_cross_entropy"]

# Rejection sampling of canonical genomes gives up after this many draws (NB201 accepts 56%).
_MAX_CANONICAL_DRAWS = 1000


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate ``lr0 * (1 + cos(pi * step / total_steps)) / 2``: from lr0 to 0, stepped per batch."""
    total = max(int(total_steps), 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    )


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate ``lr0 * (1 - step / total_steps)``: from lr0 to 0 in a straight line, stepped per batch
    (the ``LambdaLR`` of SPOS's training code, Guo et al., ECCV 2020)."""
    total = max(int(total_steps), 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - min(step, total) / total)


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` against a soft target distribution (in-place distillation, BigNAS)."""
    return -(target_probs * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


@torch.no_grad()
def _fix_affine(supernet: Supernet) -> None:
    # Affine-free BN with the module structure (and checkpoint keys) unchanged: scale 1, shift 0, frozen.
    for m in supernet.choice_batch_norms():
        if m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()
            m.weight.requires_grad_(False)
            m.bias.requires_grad_(False)


class SupernetTrainer(ABC):
    """Trains a :class:`~slimforge.spaces._supernet.Supernet` one batch at a time.

    Subclasses implement :meth:`_step`; :meth:`step` validates the batch, runs the hook, advances
    the schedules and the step counter.

    Args:
        supernet: the supernet to train (already on ``device``).
        config: the run's settings (optimiser hyper-parameters, seed, ``method_options``).
        total_steps: steps of the whole run (the cosine schedule reaches 0 there).
        device: where batches go.
    """

    #: registry name.
    name: ClassVar[str] = ""
    #: whether :meth:`step` needs a validation batch (architecture steps).
    needs_val: ClassVar[bool] = False
    #: whether the validation part is held out of training (for architecture steps or the final
    #: search); otherwise the training loop trains on the training and validation parts together.
    holds_out_val: ClassVar[bool] = False
    #: the options this trainer reads from ``config.method_options``, with their defaults.
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, supernet: Supernet, config: TrainConfig, total_steps: int, device: torch.device | str = "cpu"
    ) -> None:
        if not isinstance(supernet, Supernet):
            raise InvalidInputError(f"{self.name} trains a Supernet, got {type(supernet).__name__}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise InvalidInputError(f"total_steps must be a positive integer, got {total_steps!r}")
        self.check_supernet(supernet)
        self.supernet = supernet
        self.space: SearchSpace = supernet.space
        self.config = config
        self.options = self.resolve_options(config.method_options)
        self.total_steps = total_steps
        self.device = torch.device(device)
        self.step_count = 0
        # One generator for every random choice a trainer makes (paths, Gumbel noise); its state is
        # a tensor, so it is checkpointed with the rest.
        self.generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([config.seed, 7]).generate_state(1)[0])
        )
        if not config.bn_affine:
            _fix_affine(supernet)
        self.optimizer = torch.optim.SGD(
            self.weight_parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        schedule = linear_schedule if config.lr_schedule == "linear" else cosine_schedule
        self.scheduler = schedule(self.optimizer, total_steps)
        self.dist = DistContext(device=self.device)

    # ----------------------------------------------------------------- public API
    @classmethod
    def resolve_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """``default_options`` updated by ``options``; an unknown option raises InvalidInputError."""
        unknown = sorted(set(options) - set(cls.default_options))
        if unknown:
            known = ", ".join(sorted(cls.default_options)) or "none"
            raise InvalidInputError(
                f"method {cls.name!r} has no option {', '.join(map(repr, unknown))} (options: {known})"
            )
        resolved = {**cls.default_options, **options}
        cls._check_options(resolved)
        return resolved

    @classmethod
    def build_supernet(cls, space: SearchSpace, num_classes: int, config: TrainConfig) -> Supernet:
        """The supernet this method trains: the space's, initialised from ``config.seed``."""
        return make_supernet(space, num_classes, config.seed)

    @classmethod
    def check_supernet(cls, supernet: Supernet) -> None:
        """Raise InvalidInputError when this method cannot train ``supernet`` (e.g. DARTS on a layer-wise space)."""

    def weight_parameters(self) -> list[nn.Parameter]:
        """The supernet's weights (what the SGD optimiser updates)."""
        return [p for p in self.supernet.parameters() if p.requires_grad]

    def step(
        self,
        batch: tuple[torch.Tensor, torch.Tensor],
        val_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> float:
        """One training step on ``batch`` (and ``val_batch`` for architecture steps); returns the training loss."""
        images, labels = self._check_batch(batch, "batch")
        val = None
        if val_batch is not None:
            val = self._check_batch(val_batch, "val_batch")
        elif self.needs_val:
            raise InvalidInputError(
                f"method {self.name!r} needs a validation batch at every step (val_batch)"
            )
        self.supernet.train()
        loss = self._step(images, labels, val)
        self.scheduler.step()
        self._after_step()
        self.step_count += 1
        return float(loss)

    def distribute(self, ctx: DistContext) -> None:
        """Train as one rank of ``ctx``'s data-parallel run; call after construction (and resume).

        Every rank takes rank 0's weights and path-sampling generator, so all ranks draw the same
        path at each step (the seed of each step's draw is broadcast from rank 0 as well, see
        :meth:`_rng`), and every optimiser averages its gradients over the ranks before it steps
        (the weights' then clips them, as one process clips the global batch's gradient).
        """
        self.dist = ctx
        if not ctx.distributed:
            return
        ctx.broadcast_tensors([*self.supernet.parameters(), *self.supernet.buffers()])
        ctx.broadcast_generator(self.generator)
        for value in list(vars(self).values()):
            if isinstance(value, torch.optim.Optimizer):
                value.register_step_pre_hook(self._before_optimizer_step)

    def derive(self, data: EvalData | None = None) -> Genome | None:
        """The architecture the method itself selects, None if it selects none.

        DARTS/GDAS take the argmax of each edge; RSPS searches at random, scoring on ``data``.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Optimisers, schedules, generator state (a tensor) and the step counter."""
        return {
            "step_count": self.step_count,
            "generator": self.generator.get_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.step_count = int(state["step_count"])
        self.generator.set_state(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._load_extra_state(state)

    # ---------------------------------------------------------------- hooks
    @abstractmethod
    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        """Forward, backward and update on one validated batch; return the training loss."""

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        """Raise InvalidInputError for an option value out of range."""

    def _after_step(self) -> None:
        """Advance extra schedules (architecture optimiser)."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    # ---------------------------------------------------------------- helpers
    def _rng(self) -> np.random.Generator:
        """A numpy generator drawn from the trainer's torch generator (the space samples with numpy)."""
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        # Rank 0's draw decides the path of every rank (the generators agree anyway; this makes it so).
        return np.random.default_rng(self.dist.broadcast_int(seed))

    def _sample_genome(self, rng: np.random.Generator, canonical: bool = False) -> Genome:
        """A uniform genome, or with ``canonical`` a uniform *network* (one genome per canonical form).

        Rejection sampling keeps only genomes that are already canonical, so every distinct network
        is equally likely and none of the genomes that compute on dead edges is trained.
        """
        genome = self.space.sample(rng)
        if not canonical:
            return genome
        for _ in range(_MAX_CANONICAL_DRAWS):
            if self.space.canonical(genome) == genome:
                return genome
            genome = self.space.sample(rng)
        return self.space.canonical(genome)

    def _sample_weighted(self, rng: np.random.Generator) -> Genome:
        """A genome drawn uniformly from each gene's weighted choices (convolutions, blocks; no skip,
        pooling, ``none`` or identity): the paths a warm-up trains first."""
        choices = self.supernet.weighted_choices()
        return self.space.validate(tuple(int(c[rng.integers(len(c))]) for c in choices))

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)

    def _update_weights(self) -> None:
        if self.config.grad_clip > 0 and not self.dist.distributed:
            nn.utils.clip_grad_norm_(self.weight_parameters(), self.config.grad_clip)
        self.optimizer.step()

    def _before_optimizer_step(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        # Data-parallel runs only (registered by distribute): average, then clip the weights' gradients.
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.dist.average_gradients(params)
        if optimizer is self.optimizer and self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)

    def _check_batch(self, batch: Any, label: str) -> tuple[torch.Tensor, torch.Tensor]:
        if (
            not isinstance(batch, (tuple, list))
            or len(batch) != 2
            or not all(isinstance(t, torch.Tensor) for t in batch)
            or batch[0].ndim != 4
            or batch[1].ndim != 1
            or len(batch[0]) != len(batch[1])
            or len(batch[1]) == 0
        ):
            raise InvalidInputError(f"{label} must be (images (B, C, H, W), labels (B,)) tensors with B >= 1")
        images = batch[0].to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return images, batch[1].to(self.device, non_blocking=True)
