"""Few-shot supernets (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021).

One gene's choices split the supernet into sub-supernets, one per choice: an architecture runs in the
sub-supernet of its choice on that gene, so architectures that differ there no longer share weights.
Training starts as one one-shot supernet (every architecture in the first sub-supernet); at the split
step every sub-supernet inherits its weights (and the optimiser's momentum) and trains on its own
architectures from then on, as the paper transfers the one-shot weights before training the parts.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace, Supernet
from slimforge.supernet._build import make_supernet
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.spos import SPOSTrainer, check_fraction

__all__ = ["FewShotSupernet", "FewShotTrainer"]


class FewShotSupernet(Supernet):
    """``num_choices[gene]`` copies of a space's supernet; a genome runs in the copy of its choice on ``gene``.

    Before :meth:`split` every genome runs in the first copy (one shared one-shot supernet).

    Args:
        space: the search space.
        num_classes: classifier outputs.
        gene: the gene whose choice picks the sub-supernet; None takes the space supernet's
            :meth:`~slimforge.spaces._supernet.Supernet.few_shot_gene`.
        seed: initialises every copy alike.
    """

    def __init__(self, space: SearchSpace, num_classes: int, gene: int | None, seed: int) -> None:
        super().__init__(space, num_classes)
        first = make_supernet(space, num_classes, seed)
        self.gene = first.few_shot_gene() if gene is None else gene
        if not 0 <= self.gene < len(space.num_choices):
            raise InvalidInputError(
                f"method 'fewshot': gene {self.gene} does not exist; the {space.name!r} space has genes "
                f"0..{len(space.num_choices) - 1}"
            )
        self.parts = nn.ModuleList(
            [first] + [make_supernet(space, num_classes, seed) for _ in range(space.num_choices[self.gene] - 1)]
        )
        self.register_buffer("is_split", torch.zeros((), dtype=torch.bool))

    def part(self, genome: Genome) -> Supernet:
        """The sub-supernet that runs ``genome``."""
        return self.parts[genome[self.gene] if bool(self.is_split) else 0]

    @torch.no_grad()
    def split(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Copy the first sub-supernet's weights (and ``optimizer``'s momentum for them) into every other."""
        first = list(self.parts[0].parameters())
        for other in self.parts[1:]:
            other.load_state_dict(self.parts[0].state_dict())
            if optimizer is None:
                continue
            for src, dst in zip(first, other.parameters(), strict=True):
                state = optimizer.state.get(src)
                if state:
                    optimizer.state[dst] = {k: v.clone() for k, v in state.items()}
        self.is_split.fill_(True)

    def weighted_choices(self) -> list[tuple[int, ...]]:
        return self.parts[0].weighted_choices()

    def drop_choices(self) -> list[int | None]:
        # Path dropout (SPOS's ``drop_path``) drops what the sub-supernets drop; without this the base
        # class's "nothing can be dropped" made the option a silent no-op on few-shot supernets.
        return self.parts[0].drop_choices()

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for p in self.parts for m in p.choice_batch_norms()]

    def _forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        return self.part(genome)._forward(x, genome)

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        self.part(genome)._load_into(net, genome)


class FewShotTrainer(SPOSTrainer):
    """SPOS on a :class:`FewShotSupernet`: one-shot until ``split`` (a fraction of the steps), then
    each step trains the sampled path in its own sub-supernet.

    Options: ``gene`` (the gene split on; default the supernet's
    :meth:`~slimforge.spaces._supernet.Supernet.few_shot_gene`: NAS-Bench-201's edge 0 -> 3, a
    layer-wise space's first layer), ``split`` (0.5), ``warmup`` (0.8: here the convolution warm-up
    is on by default, the split falling inside it) and SPOS's other options. These defaults ranked
    best on NAS-Bench-201 (BENCHMARKS, issue 16).
    """

    name = "fewshot"
    default_options: ClassVar[dict[str, Any]] = {
        **SPOSTrainer.default_options,
        "warmup": 0.8,
        "gene": None,
        "split": 0.5,
    }

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        super()._check_options(options)
        check_fraction(cls.name, "split", options["split"])
        gene = options["gene"]
        if gene is not None and (isinstance(gene, bool) or not isinstance(gene, int) or gene < 0):
            raise InvalidInputError(f"method 'fewshot': gene must be an integer >= 0, got {gene!r}")

    @classmethod
    def check_supernet(cls, supernet: Supernet) -> None:
        if not isinstance(supernet, FewShotSupernet):
            raise InvalidInputError(
                f"method 'fewshot' trains a FewShotSupernet, got {type(supernet).__name__}; "
                "make it with FewShotTrainer.build_supernet"
            )

    @classmethod
    def build_supernet(cls, space: SearchSpace, num_classes: int, config: TrainConfig) -> Supernet:
        gene = cls.resolve_options(config.method_options)["gene"]
        return FewShotSupernet(space, num_classes, gene, config.seed)

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        supernet = self.supernet
        assert isinstance(supernet, FewShotSupernet)  # check_supernet made sure
        if not bool(supernet.is_split) and self.step_count >= self.options["split"] * self.total_steps:
            supernet.split(self.optimizer)
        return super()._step(images, labels, val)
