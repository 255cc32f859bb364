"""The NAS-Bench-201 cell search space (Dong & Yang, "NAS-Bench-201", ICLR 2020).

A cell is a DAG over 4 nodes (node 0 = cell input, node 3 = cell output); each of its 6 edges
``i -> j`` (i < j) carries one of 5 operations. The genome lists the edges in the order of the
standard string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: (0→1), (0→2), (1→2), (0→3), (1→3), (2→3).
The macro skeleton is the benchmark's: a 3×3 conv stem with 16 channels, three stages of
``cells_per_stage`` cells at 16 / 32 / 64 channels joined by ResNet basic blocks of stride 2,
then BN-ReLU, global average pooling and a linear classifier. All 15,625 genomes share it.
"""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces._base import Genome, SearchSpace
from slimforge.spaces._supernet import Supernet

__all__ = ["NB201_EDGES", "NB201_OPS", "NB201Cell", "NB201Network", "NB201Space"]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (from_node, to_node) of each gene, in the order of the standard string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_NUM_NODES = 4
_NONE = 0


class _ReLUConvBN(nn.Sequential):
    """ReLU → Conv → BN, the benchmark's ``nor_conv`` operation."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_chs),
        )


def _make_op(name: str, chs: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(chs, chs, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(chs, chs, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidInputError(f"unknown NAS-Bench-201 operation {name!r} (known: {', '.join(NB201_OPS)})")


class NB201Cell(nn.Module):
    """One cell: node j is the sum of its incoming edges' operations; ``none`` edges are absent.

    A node with no incoming edge (every edge ``none``) holds zeros, as the benchmark's
    ``Zero`` operation would give.
    """

    def __init__(self, genome: Genome, chs: int) -> None:
        super().__init__()
        self.genome = tuple(genome)
        self.edges = nn.ModuleDict()
        for (i, j), op in zip(NB201_EDGES, self.genome):
            if op != _NONE:
                self.edges[f"{j}_{i}"] = _make_op(NB201_OPS[op], chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, _NUM_NODES):
            total = None
            for i in range(j):
                key = f"{j}_{i}"
                if key in self.edges:
                    out = self.edges[key](nodes[i])
                    total = out if total is None else total + out
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """ResNet basic block of stride 2 between stages (conv path + avgpool/1×1 shortcut)."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(in_chs, out_chs, 3, stride=2)
        self.conv_b = _ReLUConvBN(out_chs, out_chs, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(in_chs, out_chs, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton with one cell genome repeated in every cell.

    Args:
        genome: a validated 6-gene NB201 genome.
        num_classes: classifier outputs.
        channels: channels of the first stage (16 in the benchmark); doubled per stage.
        cells_per_stage: cells per stage (5 in the benchmark).
    """

    def __init__(
        self, genome: Genome, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        chs = channels
        for stage in range(3):
            if stage > 0:
                layers.append(_ResidualReduction(chs, chs * 2))
                chs *= 2
            layers.extend(NB201Cell(genome, chs) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.BatchNorm2d(chs), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.classifier = nn.Linear(chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space: 6 genes (edges) × 5 operations = 15,625 genomes.

    Canonical form (:meth:`canonical`), applied in this order:

    1. *Dead edges become* ``none``. A node is *reachable* if some path of non-``none`` edges
       leads to it from the cell input, and *useful* if such a path leads from it to the cell
       output. An edge ``i -> j`` is kept only if it is not ``none``, node ``i`` is reachable
       and node ``j`` is useful; every other edge is set to ``none``. A node without a live
       input holds zeros, so whatever it feeds computes on zeros (up to a BN bias constant,
       which the rule ignores, as the benchmark's own de-duplication does), and an edge into a
       node that never reaches the output cannot change the cell's output.
    2. *Node 1 and node 2 are interchangeable when the edge 1→2 is* ``none``: the cell then
       computes ``e03(x) + e13(e01(x)) + e23(e02(x))``, so swapping the pairs (e01, e13) and
       (e02, e23) gives the same function with the parameters permuted. The rule keeps the
       pair order whose (e01, e13) is lexicographically smaller.

    The map is idempotent; it groups the 15,625 genomes into 8,765 distinct networks.

    Args:
        channels: first-stage channels of :meth:`build` (16 in the benchmark).
        cells_per_stage: cells per stage of :meth:`build` (5 in the benchmark).
    """

    name = "nb201"

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        for label, value in (("channels", channels), ("cells_per_stage", cells_per_stage)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"nb201 {label} must be a positive int, got {value!r}")
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    @property
    def num_choices(self) -> list[int]:
        return [len(NB201_OPS)] * len(NB201_EDGES)

    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        return NB201Network(genome, num_classes, self.channels, self.cells_per_stage)

    def _supernet(self, num_classes: int) -> Supernet:
        from slimforge.spaces.nb201_supernet import NB201Supernet

        return NB201Supernet(self, num_classes)

    def _canonical(self, genome: Genome) -> Genome:
        g = list(genome)
        reachable = [True] + [False] * (_NUM_NODES - 1)
        for k, (i, j) in enumerate(NB201_EDGES):  # edges are in topological order of j
            if g[k] != _NONE and reachable[i]:
                reachable[j] = True
        useful = [False] * (_NUM_NODES - 1) + [True]
        for k in reversed(range(len(NB201_EDGES))):
            i, j = NB201_EDGES[k]
            if g[k] != _NONE and useful[j]:
                useful[i] = True
        for k, (i, j) in enumerate(NB201_EDGES):
            if not (reachable[i] and useful[j]):
                g[k] = _NONE
        if g[2] == _NONE and (g[1], g[5]) < (g[0], g[4]):
            g[0], g[4], g[1], g[5] = g[1], g[5], g[0], g[4]
        return tuple(g)

    def _to_string(self, genome: Genome) -> str:
        nodes = []
        for j in range(1, _NUM_NODES):
            ops = [f"{NB201_OPS[genome[k]]}~{i}" for k, (i, jj) in enumerate(NB201_EDGES) if jj == j]
            nodes.append("|" + "|".join(ops) + "|")
        return "+".join(nodes)

    def _from_string(self, text: str) -> Genome:
        expected = "e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        nodes = text.strip().split("+")
        if len(nodes) != _NUM_NODES - 1:
            raise InvalidInputError(
                f"NAS-Bench-201 string {text!r} must have {_NUM_NODES - 1} '+'-separated nodes, {expected}"
            )
        genome = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise InvalidInputError(
                    f"NAS-Bench-201 string {text!r}: node {node!r} must be wrapped in '|', {expected}"
                )
            tokens = node[1:-1].split("|")
            if len(tokens) != j:
                raise InvalidInputError(
                    f"NAS-Bench-201 string {text!r}: node {j} must have {j} edge(s), got {node!r}"
                )
            for i, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if op not in NB201_OPS:
                    raise InvalidInputError(
                        f"NAS-Bench-201 string {text!r}: unknown operation {op!r} (known: {', '.join(NB201_OPS)})"
                    )
                if src != str(i):
                    raise InvalidInputError(
                        f"NAS-Bench-201 string {text!r}: edge {token!r} of node {j} must read '{op}~{i}'"
                    )
                genome.append(NB201_OPS.index(op))
        return tuple(genome)

    def __repr__(self) -> str:
        return f"NB201Space(channels={self.channels}, cells_per_stage={self.cells_per_stage})"
