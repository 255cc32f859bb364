"""The sandwich rule with in-place distillation (Yu et al., "BigNAS", ECCV 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace
from slimforge.supernet._trainer import SupernetTrainer, soft_cross_entropy

__all__ = ["SandwichTrainer", "size_extremes"]


def _num_params(space: SearchSpace, genome: Genome) -> int:
    return sum(p.numel() for p in space.build(genome).parameters())


def size_extremes(space: SearchSpace) -> tuple[Genome, Genome]:
    """The (largest, smallest) genomes of ``space``.

    A space that knows its extremes says so with a hook ``_extremes() -> (largest, smallest)`` (e.g.
    by MACs). Otherwise each gene takes, all else at choice 0, the choice that gives the built network
    the most (largest) or fewest (smallest) parameters: exact when genes add parameters independently,
    as in layer-wise spaces, at the cost of ``1 + sum(n - 1)`` builds.
    """
    hook = getattr(space, "_extremes", None)
    if callable(hook):
        largest, smallest = hook()
        return space.validate(largest), space.validate(smallest)
    base = tuple(0 for _ in space.num_choices)
    base_params = _num_params(space, base)
    largest, smallest = list(base), list(base)
    for i, n in enumerate(space.num_choices):
        sizes = [base_params] + [_num_params(space, base[:i] + (c,) + base[i + 1 :]) for c in range(1, n)]
        largest[i] = max(range(n), key=lambda c: (sizes[c], -c))
        smallest[i] = min(range(n), key=lambda c: (sizes[c], c))
    return space.validate(largest), space.validate(smallest)


class SandwichTrainer(SupernetTrainer):
    """Each step trains the largest path on the labels, then the smallest and ``num_random`` random
    paths on the largest path's (detached) soft predictions; the gradients are summed and applied once.

    Option ``num_random``: random paths per step (2 in BigNAS).
    """

    name = "sandwich"
    default_options: ClassVar[dict[str, Any]] = {"num_random": 2}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hook = getattr(self.supernet, "size_extremes", None)
        largest_smallest = hook() if callable(hook) else size_extremes(self.space)
        self.largest, self.smallest = (self.space.validate(g) for g in largest_smallest)

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        n = options["num_random"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidInputError(f"method 'sandwich': num_random must be an integer >= 0, got {n!r}")

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        rng = self._rng()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(images, self.largest)
        loss = self._loss(logits, labels)
        loss.backward()
        teacher = torch.softmax(logits.detach(), dim=1)
        students = [self.smallest] + [self.space.sample(rng) for _ in range(self.options["num_random"])]
        for genome in students:
            soft_cross_entropy(self.supernet(images, genome), teacher).backward()
        self._update_weights()
        return loss.item()
