"""FairNAS: strict-fairness supernet training (Chu et al., ICCV 2021)."""

from __future__ import annotations

import numpy as np
import torch

from slimforge.spaces import Genome, SearchSpace
from slimforge.supernet._trainer import SupernetTrainer

__all__ = ["FairNASTrainer", "fair_paths"]


def fair_paths(space: SearchSpace, rng: np.random.Generator) -> list[Genome]:
    """``m = max(num_choices)`` genomes that together use every choice of every gene.

    Each gene's choices are permuted independently and path ``k`` takes the ``k``-th entry of every
    permutation, so with equal choice counts every choice is used exactly once (strict fairness). A
    gene with fewer than ``m`` choices fills the remaining paths with extra random choices of its own,
    so each of its choices is still used at least once.
    """
    choices = space.num_choices
    m = max(choices)
    columns = []
    for n in choices:
        column = rng.permutation(n)
        if n < m:
            column = rng.permutation(np.concatenate([column, rng.integers(0, n, size=m - n)]))
        columns.append(column)
    return [space.validate(tuple(int(c[k]) for c in columns)) for k in range(m)]


class FairNASTrainer(SupernetTrainer):
    """Each step runs the ``m`` fair paths of :func:`fair_paths` on the same batch, accumulates their
    gradients and makes one update, so every choice block gets the same number of updates."""

    name = "fairnas"

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        paths = fair_paths(self.space, self._rng())
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for genome in paths:
            loss = self._loss(self.supernet(images, genome), labels)
            loss.backward()
            total += loss.item()
        self._update_weights()
        return total / len(paths)
