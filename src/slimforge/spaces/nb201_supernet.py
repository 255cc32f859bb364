"""The NAS-Bench-201 weight-sharing supernet (Dong & Yang, ICLR 2020).

Every edge of every cell holds one module per operation; a genome picks one per edge and the same
genome is used by every cell, as in :class:`~slimforge.spaces.nb201.NB201Network`. Besides the
single-path ``forward(x, genome)`` the supernet runs the two relaxations the co-design study's
baselines need:

- :meth:`NB201Supernet.forward_mixture`: each edge outputs the weighted sum of all its operations
  (DARTS, Liu et al., ICLR 2019, with the weights a softmax of the architecture parameters);
- :meth:`NB201Supernet.forward_sampled`: each edge runs only its sampled operation, scaled by a
  straight-through one-hot weight so that the gradient reaches every architecture parameter (GDAS,
  Dong & Yang, CVPR 2019).

The module names mirror the standalone network's, with one extra ``ops.<operation>`` level per edge,
so :meth:`extract` is a key rename of the state dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces._base import Genome
from slimforge.spaces._supernet import Supernet
from slimforge.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201Space, _ReLUConvBN, _ResidualReduction

__all__ = ["NB201Supernet"]

_NUM_NODES = 4
#: folds one edge's contribution into a node's running total: ``(total, edge index, edge, input) -> total``.
EdgeAdder = Callable[[torch.Tensor, int, "_SuperEdge", torch.Tensor], torch.Tensor]
_NONE = NB201_OPS.index("none")
_EDGE_KEY = re.compile(r"^cells\.(\d+)\.edges\.(\d+)_(\d+)\.(.+)$")


def _make_ops(chs: int) -> nn.ModuleDict:
    # Built exactly as the standalone cell builds them, so parameters map one to one.
    return nn.ModuleDict(
        {
            "skip_connect": nn.Identity(),
            "nor_conv_1x1": _ReLUConvBN(chs, chs, 1),
            "nor_conv_3x3": _ReLUConvBN(chs, chs, 3),
            "avg_pool_3x3": nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        }
    )


class _SuperEdge(nn.Module):
    def __init__(self, chs: int) -> None:
        super().__init__()
        self.ops = _make_ops(chs)

    def run(self, x: torch.Tensor, op: int) -> torch.Tensor:
        return self.ops[NB201_OPS[op]](x)


class _SuperCell(nn.Module):
    def __init__(self, chs: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({f"{j}_{i}": _SuperEdge(chs) for i, j in NB201_EDGES})

    def forward_path(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        # Same summation order as NB201Cell so the extracted network matches bit for bit.
        nodes = [x]
        for j in range(1, _NUM_NODES):
            total = None
            for k, (i, jj) in enumerate(NB201_EDGES):
                if jj != j or genome[k] == _NONE:
                    continue
                out = self.edges[f"{j}_{i}"].run(nodes[i], genome[k])
                total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]

    def forward_mixture(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        def add(total: torch.Tensor, k: int, edge: _SuperEdge, h: torch.Tensor) -> torch.Tensor:
            for op in range(len(NB201_OPS)):
                if op != _NONE:  # the zero operation adds nothing, whatever its weight
                    total = total + weights[k, op] * edge.run(h, op)
            return total

        return self._accumulate(x, add)

    def forward_sampled(self, x: torch.Tensor, hard: torch.Tensor, index: list[int]) -> torch.Tensor:
        def add(total: torch.Tensor, k: int, edge: _SuperEdge, h: torch.Tensor) -> torch.Tensor:
            op = index[k]
            # The other entries of ``hard`` are 0 in value but carry the straight-through
            # gradient; adding them keeps every architecture parameter in the graph (GDAS).
            others = hard[k].sum() - hard[k, op]
            if op != _NONE:
                return total + hard[k, op] * edge.run(h, op) + others
            return total + hard[k, op] * torch.zeros_like(h) + others

        return self._accumulate(x, add)

    def _accumulate(self, x: torch.Tensor, add: EdgeAdder) -> torch.Tensor:
        """The cell's output where each node starts at zero and ``add(total, k, edge, h_i)`` folds in
        each incoming edge ``k`` (from node ``i``), in edge order."""
        nodes = [x]
        for j in range(1, _NUM_NODES):
            total = torch.zeros_like(x)
            for k, (i, jj) in enumerate(NB201_EDGES):
                if jj == j:
                    total = add(total, k, self.edges[f"{j}_{i}"], nodes[i])
            nodes.append(total)
        return nodes[-1]


class NB201Supernet(Supernet):
    """Weight-sharing supernet of :class:`~slimforge.spaces.nb201.NB201Space`.

    Args:
        space: the space (its ``channels`` and ``cells_per_stage`` fix the skeleton).
        num_classes: classifier outputs.
    """

    def __init__(self, space: NB201Space, num_classes: int = 10) -> None:
        if not isinstance(space, NB201Space):
            raise InvalidInputError(f"NB201Supernet needs an NB201Space, got {space!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidInputError(f"num_classes must be a positive int, got {num_classes!r}")
        super().__init__(space, num_classes)
        chs = space.channels
        self.stem = nn.Sequential(nn.Conv2d(3, chs, 3, padding=1, bias=False), nn.BatchNorm2d(chs))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(_ResidualReduction(chs, chs * 2))
                chs *= 2
            layers.extend(_SuperCell(chs) for _ in range(space.cells_per_stage))
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(
            nn.BatchNorm2d(chs), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.classifier = nn.Linear(chs, num_classes)

    @property
    def arch_shape(self) -> tuple[int, int]:
        """Shape of the architecture parameters: (edges, operations) = (6, 5)."""
        return (len(NB201_EDGES), len(NB201_OPS))

    def weighted_choices(self) -> list[tuple[int, ...]]:
        """The convolutions (``nor_conv_1x1``, ``nor_conv_3x3``) on every edge."""
        edge = self.cells[0].edges[f"{NB201_EDGES[0][1]}_{NB201_EDGES[0][0]}"]
        ops = tuple(
            k
            for k, name in enumerate(NB201_OPS)
            if name in edge.ops and any(True for _ in edge.ops[name].parameters())
        )
        return [ops] * len(NB201_EDGES)

    def few_shot_gene(self) -> int:
        """The edge from the cell input to its output (0 -> 3): its operation decides whether the cell
        is residual, plain or cut, the split the ranking study found best (BENCHMARKS, issue 16)."""
        return NB201_EDGES.index((0, 3))

    def drop_choices(self) -> list[int | None]:
        """``none`` on every edge."""
        return [_NONE] * len(NB201_EDGES)

    def size_extremes(self) -> tuple[Genome, Genome]:
        """(largest, smallest) paths for the sandwich rule: every edge a 3x3 convolution, and every edge
        a skip connection (the smallest network that still computes; all-``none`` outputs a constant)."""
        edges = len(NB201_EDGES)
        return (NB201_OPS.index("nor_conv_3x3"),) * edges, (NB201_OPS.index("skip_connect"),) * edges

    def choice_batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        """The BN of every convolution on every cell edge."""
        return [
            m
            for cell in self.cells
            if isinstance(cell, _SuperCell)
            for m in cell.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def genome_from_weights(self, weights: torch.Tensor) -> Genome:
        """The architecture DARTS and GDAS derive: the strongest operation of each edge (argmax)."""
        self._check_weights(weights)
        return self.space.validate(tuple(int(v) for v in weights.detach().argmax(dim=1).tolist()))

    def forward_mixture(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logits of the continuous relaxation: each edge is ``sum_k weights[edge, k] * op_k(x)``.

        Args:
            x: images (B, 3, H, W).
            weights: (6, 5) operation weights per edge, e.g. ``softmax(alpha, dim=1)`` (DARTS).
        """
        self._check_weights(weights)
        return self._run(x, lambda cell, h: cell.forward_mixture(h, weights))

    def forward_sampled(self, x: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        """Logits with one operation per edge, the argmax of ``hard`` (GDAS's forward).

        Args:
            x: images (B, 3, H, W).
            hard: (6, 5) one-hot rows in value, e.g. the straight-through Gumbel-softmax sample
                ``onehot - soft.detach() + soft``; only the chosen operation of each edge runs.
        """
        self._check_weights(hard)
        index = [int(v) for v in hard.detach().argmax(dim=1).tolist()]
        return self._run(x, lambda cell, h: cell.forward_sampled(h, hard, index))

    # ------------------------------------------------------------------ hooks
    def _forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        return self._run(x, lambda cell, h: cell.forward_path(h, genome))

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        source = self.state_dict()
        mapped = {}
        for key in net.state_dict():
            match = _EDGE_KEY.match(key)
            if match is None:
                mapped[key] = source[key]
                continue
            cell, j, i, rest = match.groups()
            op = NB201_OPS[genome[NB201_EDGES.index((int(i), int(j)))]]
            mapped[key] = source[f"cells.{cell}.edges.{j}_{i}.ops.{op}.{rest}"]
        net.load_state_dict(mapped, strict=True)

    # ---------------------------------------------------------------- helpers
    def _run(self, x: torch.Tensor, cell_forward) -> torch.Tensor:  # type: ignore[no-untyped-def]
        h = self.stem(x)
        for layer in self.cells:
            h = cell_forward(layer, h) if isinstance(layer, _SuperCell) else layer(h)
        return self.classifier(self.head(h))

    def _check_weights(self, weights: torch.Tensor) -> None:
        if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != self.arch_shape:
            shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise InvalidInputError(
                f"architecture weights must be a tensor of shape {self.arch_shape} (edges x operations), got {shape}"
            )
