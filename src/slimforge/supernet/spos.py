"""SPOS: single-path one-shot training with uniform path sampling (Guo et al., ECCV 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.supernet._trainer import SupernetTrainer

__all__ = ["SPOSTrainer"]

SAMPLINGS = ("uniform", "canonical")


def check_sampling(name: str, options: dict[str, Any]) -> None:
    """Raise for a ``sampling`` option other than ``uniform`` / ``canonical``."""
    if options["sampling"] not in SAMPLINGS:
        raise InvalidInputError(
            f"method {name!r}: sampling {options['sampling']!r} is not one of {', '.join(SAMPLINGS)}"
        )


def check_fraction(name: str, option: str, value: Any) -> None:
    """Raise for an option that is not a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InvalidInputError(f"method {name!r}: {option} must be a number in [0, 1), got {value!r}")


class SPOSTrainer(SupernetTrainer):
    """Each step trains one path drawn uniformly at random, with one SGD update.

    Option ``sampling``: ``"uniform"`` draws a uniform genome (the paper); ``"canonical"`` draws a
    uniform distinct network (only canonical genomes), so that architectures with many genomes (dead
    edges in NAS-Bench-201) are not trained more often and no path computes on dead edges.

    Option ``warmup``: the first ``warmup`` fraction of the steps draws each gene from its weighted
    choices only (:meth:`~slimforge.spaces._supernet.Supernet.weighted_choices`: NAS-Bench-201's
    convolutions, every block but the identity), so the convolutions learn before they share the
    network with parameter-free paths.

    Option ``drop_path``: each gene of a drawn path is dropped (an NB201 edge becomes ``none``, a
    layer the identity) with this probability, path dropout on the single path.
    """

    name = "spos"
    default_options: ClassVar[dict[str, Any]] = {"sampling": "uniform", "warmup": 0.0, "drop_path": 0.0}

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        check_sampling(cls.name, options)
        check_fraction(cls.name, "warmup", options["warmup"])
        check_fraction(cls.name, "drop_path", options["drop_path"])

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        rng = self._rng()
        if self.step_count < self.options["warmup"] * self.total_steps:
            genome = self._sample_weighted(rng)
        else:
            genome = self._sample_genome(rng, canonical=self.options["sampling"] == "canonical")
        if self.options["drop_path"] > 0:
            genome = self._drop_paths(genome, rng)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.supernet(images, genome), labels)
        loss.backward()
        self._update_weights()
        return loss.item()

    def _drop_paths(self, genome: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        # Path dropout on the single path: each gene that can be dropped (an NB201 edge to ``none``, a
        # layer-wise layer to the identity) is dropped with probability ``drop_path``.
        dropped = self.supernet.drop_choices()
        out = [
            d if d is not None and c != d and rng.random() < self.options["drop_path"] else c
            for c, d in zip(genome, dropped)
        ]
        return self.space.validate(tuple(out))
