"""Analytic features of a NAS-Bench-201 network for latency predictors.

Latency on a CPU runtime is close to a sum of per-operator costs, so the features are what the
network really computes, counted three ways, because runtimes differ in what they execute:

* ``graph``: every non-``none`` edge of the cell, dead or not (a runtime that keeps dead code,
  as ONNX Runtime does on the exported benchmark graphs);
* ``live``: only edges into nodes that reach the cell output (dead-code elimination, as the
  TFLite converter does);
* ``canon``: the space's canonical cell (dead edges removed on both sides).

Average pools on the same tensor are counted once, because graph optimisers merge identical
weight-free operators (common-subexpression elimination); a ``skip`` edge forwards its input
tensor, so ``pool(skip(x))`` and ``pool(x)`` are the same tensor. Per-network MACs, parameters
and bytes moved are computed analytically from the macro skeleton (stem, 3 stages of cells at
C/2C/4C channels and H/(H/2)/(H/4) pixels, residual reductions, head), with no network built, so
featurising the 15,625 cells takes about a second. The longest live path, the number of live
intermediate nodes and whether the cell output is a constant (no input-to-output path) complete it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimforge.errors import InvalidInputError

__all__ = ["CELL_COUNT_NAMES", "VIEWS", "NB201Features", "isomorphism_key", "onehot"]

# Operation indices of the NB201 genome (slimforge.spaces.nb201.NB201_OPS).
_NONE, _SKIP, _CONV1, _CONV3, _POOL = range(5)
_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_NUM_OPS = 5
_OP_NAMES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_BYTES_PER_VALUE = 4  # float32 activations and weights

VIEWS: tuple[str, ...] = ("graph", "live", "canon")
CELL_COUNT_NAMES: tuple[str, ...] = ("conv1x1", "conv3x3", "pool", "skip", "none", "add")


def _useful_nodes(genome: Sequence[int]) -> set[int]:
    """Nodes from which a path of non-``none`` edges reaches the cell output (node 3)."""
    useful = {3}
    for k in reversed(range(len(_EDGES))):
        i, j = _EDGES[k]
        if genome[k] != _NONE and j in useful:
            useful.add(i)
    return useful


def _cell_counts(genome: Sequence[int], nodes: set[int] | None) -> np.ndarray:
    """Operator counts of one cell over the edges into ``nodes`` (all nodes when None).

    Returns counts in the order of :data:`CELL_COUNT_NAMES`; pools on the same tensor count once.
    """
    counts = dict.fromkeys(CELL_COUNT_NAMES, 0)
    tensor = {0: "x"}  # a symbolic name per node, so equal tensors get equal names
    pools: set[str] = set()
    for j in (1, 2, 3):
        terms = []
        for k, (i, jj) in enumerate(_EDGES):
            if jj != j or (nodes is not None and j not in nodes):
                continue
            op = genome[k]
            if op == _NONE:
                counts["none"] += 1
            elif op == _SKIP:
                counts["skip"] += 1
                terms.append(tensor[i])
            elif op == _POOL:
                name = f"pool({tensor[i]})"
                pools.add(name)
                terms.append(name)
            else:
                counts["conv1x1" if op == _CONV1 else "conv3x3"] += 1
                terms.append(f"conv{op}_{i}{j}({tensor[i]})")  # convs have their own weights
        counts["add"] += max(len(terms) - 1, 0)
        tensor[j] = "+".join(sorted(terms)) if terms else f"zeros{j}"
    counts["pool"] = len(pools)
    return np.array([counts[n] for n in CELL_COUNT_NAMES], dtype=np.float64)


def _longest_path(genome: Sequence[int]) -> tuple[int, int]:
    """(edges, compute ops) on the longest input-to-output path of non-``none`` edges; 0 if none."""
    best_edges = {0: 0}
    best_ops = {0: 0}
    for k, (i, j) in enumerate(_EDGES):
        if genome[k] == _NONE or i not in best_edges:
            continue
        compute = 1 if genome[k] in (_CONV1, _CONV3, _POOL) else 0
        best_edges[j] = max(best_edges.get(j, 0), best_edges[i] + 1)
        best_ops[j] = max(best_ops.get(j, 0), best_ops[i] + compute)
    return best_edges.get(3, 0), best_ops.get(3, 0)


def isomorphism_key(genome: Sequence[int]) -> str:
    """The function a cell computes, as NAS-Bench-201's de-duplication string sees it.

    Follows the benchmark's ``to_unique_str(consider_zero=True)`` reading (Dong & Yang, 2020):
    a ``skip`` edge forwards its input, a ``none`` edge or an edge from an all-zero node gives
    zero, and the terms summed into a node are sorted. Cells with equal keys were measured once
    by the benchmarks built on NAS-Bench-201 (HW-NAS-Bench), which copy that one measurement to
    every cell of the class.
    """
    nodes = {0: "0"}
    for j in (1, 2, 3):
        terms = []
        for k, (i, jj) in enumerate(_EDGES):
            if jj != j:
                continue
            op = genome[k]
            if op == _NONE or nodes[i] == "#":
                terms.append("#")
            elif op == _SKIP:
                terms.append(nodes[i])
            else:
                terms.append(f"({nodes[i]})@{_OP_NAMES[op]}")
        # The benchmark sorts the terms as strings without flattening nested sums, so the
        # classes depend on the operation names: keep them, or the classes come out different.
        nodes[j] = "+".join(sorted(terms))
    return nodes[3]


def onehot(genomes: Sequence[Sequence[int]]) -> np.ndarray:
    """The raw one-hot encoding of NB201 genomes: 6 genes × 5 operations = 30 columns."""
    g = np.asarray(genomes, dtype=np.int64).reshape(-1, len(_EDGES))
    out = np.zeros((len(g), len(_EDGES) * _NUM_OPS))
    rows = np.arange(len(g))
    for k in range(len(_EDGES)):
        out[rows, k * _NUM_OPS + g[:, k]] = 1.0
    return out


@dataclass(frozen=True)
class NB201Features:
    """Featuriser of NAS-Bench-201 genomes: per-view operator counts plus network analytics.

    Args:
        channels: first-stage channels (16 in the benchmark), doubled per stage.
        cells_per_stage: cells per stage (5 in the benchmark).
        input_size: input resolution in pixels (32 for CIFAR).
        num_classes: classifier outputs (100 in the HW-NAS-Bench measurements).
    """

    channels: int = 16
    cells_per_stage: int = 5
    input_size: int = 32
    num_classes: int = 100

    def __post_init__(self) -> None:
        for label in ("channels", "cells_per_stage", "input_size", "num_classes"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"NB201Features {label} must be a positive int, got {value!r}")
        if self.input_size % 4:
            raise InvalidInputError(
                f"NB201Features input_size {self.input_size} must be divisible by 4 (two stride-2 stages)"
            )

    @property
    def names(self) -> list[str]:
        """Column names of :meth:`transform`'s output."""
        cols = [f"{view}_{name}" for view in VIEWS for name in CELL_COUNT_NAMES]
        for view in ("graph", "live"):
            cols += [f"{view}_macs", f"{view}_params", f"{view}_bytes"]
        cols += ["macs_total", "path_edges", "path_ops", "live_nodes", "constant_output"]
        return cols

    def _stages(self) -> list[tuple[int, int]]:
        """(channels, pixels) of each of the 3 stages."""
        return [(self.channels * 2**s, (self.input_size // 2**s) ** 2) for s in range(3)]

    def _per_op_costs(self) -> dict[str, np.ndarray]:
        """Network-wide (macs, params, bytes) of one operator of each kind in every cell."""
        cost = {n: np.zeros(3) for n in CELL_COUNT_NAMES}
        for chs, pixels in self._stages():
            act = chs * pixels
            for name, k in (("conv1x1", 1), ("conv3x3", 3)):
                weights = chs * chs * k * k
                # ReLU -> conv -> BN: read the input, write the output, read the weights.
                cost[name] += self.cells_per_stage * np.array(
                    [weights * pixels, weights + 2 * chs, (2 * act + weights) * _BYTES_PER_VALUE]
                )
            cost["pool"] += self.cells_per_stage * np.array([0.0, 0.0, 2 * act * _BYTES_PER_VALUE])
            cost["add"] += self.cells_per_stage * np.array([0.0, 0.0, 3 * act * _BYTES_PER_VALUE])
            # The benchmark's Zero op is x * 0: it reads and writes a whole tensor.
            cost["none"] += self.cells_per_stage * np.array([0.0, 0.0, 2 * act * _BYTES_PER_VALUE])
        return cost

    def skeleton_macs(self) -> float:
        """MACs of everything outside the cells: stem, two residual reductions, classifier."""
        c = self.channels
        pixels = [p for _, p in self._stages()]
        macs = 3 * c * 9 * pixels[0]
        for s in (1, 2):
            cin, cout = c * 2 ** (s - 1), c * 2**s
            macs += (cin * cout * 9 + cout * cout * 9 + cin * cout) * pixels[s]
        return float(macs + 4 * c * self.num_classes)

    def cell_macs(self, genomes: Sequence[Sequence[int]]) -> np.ndarray:
        """MACs of the whole network (skeleton + every non-``none`` cell operator), per genome."""
        costs = self._per_op_costs()
        out = []
        for g in genomes:
            counts = _cell_counts(g, None)
            out.append(sum(costs[n][0] * counts[i] for i, n in enumerate(CELL_COUNT_NAMES)))
        return np.asarray(out) + self.skeleton_macs()

    def transform(self, genomes: Sequence[Sequence[int]]) -> np.ndarray:
        """Feature matrix (one row per genome, columns :attr:`names`) of NB201 genomes."""
        from slimforge.spaces.nb201 import NB201Space

        arr = np.asarray(genomes, dtype=np.int64).reshape(-1, len(_EDGES))
        if len(arr) == 0:
            return np.zeros((0, len(self.names)))
        # Featurise each distinct genome once: tables repeat them (timed genomes, test sets).
        unique, inverse = np.unique(arr, axis=0, return_inverse=True)
        space = NB201Space()
        costs = self._per_op_costs()
        cost_matrix = np.stack([costs[n] for n in CELL_COUNT_NAMES])  # (ops, 3)
        skeleton = self.skeleton_macs()
        rows = []
        for genome in unique:
            g = space.validate(genome)
            graph = _cell_counts(g, None)
            live = _cell_counts(g, _useful_nodes(g))
            canonical = space.canonical(g)
            canon_useful = _useful_nodes(canonical)
            canon = _cell_counts(canonical, canon_useful)
            path_edges, path_ops = _longest_path(canonical)
            live_nodes = len(canon_useful - {0, 3}) if any(canonical) else 0
            rows.append(
                np.concatenate(
                    [
                        graph,
                        live,
                        canon,
                        graph @ cost_matrix,
                        live @ cost_matrix,
                        [
                            skeleton + graph @ cost_matrix[:, 0],
                            path_edges,
                            path_ops,
                            live_nodes,
                            # No input-to-output path: the output is a constant, which a
                            # constant-folding converter (TFLite) computes ahead of time.
                            float(not any(canonical)),
                        ],
                    ]
                )
            )
        return np.asarray(rows, dtype=np.float64)[inverse.reshape(-1)]
