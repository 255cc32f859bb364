"""Additive architecture costs: what the hardware-aware trainers differentiate (FBNet, ProxylessNAS).

A cost is ``base + sum_i table[i][genome[i]]``: one figure per choice of every gene. Its expectation
under per-gene choice probabilities ``p`` is ``base + sum_i sum_c p[i, c] * table[i][c]``, linear in
``p`` and so differentiable in the architecture parameters (FBNet, Wu et al., CVPR 2019, eq. 4;
ProxylessNAS, Cai et al., ICLR 2019, eq. 5). Sources (the ``latency`` option of the trainers):

- ``lut:FILE``: a layer-wise space's lookup table (``slimforge lut build``). Its prediction is a sum
  of parts minus one call overhead per part beyond the first, so it is exactly additive: the table
  here reproduces :meth:`~slimforge.hardware.LatencyTable.predict` for every genome.
- ``predictor:FILE`` / ``table:FILE``: a NAS-Bench-201 latency predictor or device table. Neither is
  additive in the edges (dead edges, merged pools), so the table here is the least-squares additive
  surrogate of its figures over all 15,625 cells; the fit's error is kept in :attr:`ArchCosts.note`.
- ``macs``: millions of multiply-accumulates, counted per choice (no device needed; the default).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.spaces import Genome, SearchSpace

__all__ = ["SOURCES", "ArchCosts", "load_arch_costs"]

#: the cost sources, as the ``latency`` option spells them.
SOURCES = ("macs", "lut:FILE", "predictor:FILE", "table:FILE")
_NB201_CELLS = 5**6


@dataclass(frozen=True)
class ArchCosts:
    """The additive cost model of one space: ``base + sum_i table[i][genome[i]]``.

    Attributes:
        source: the spec it came from (``lut:FILE``, ``macs``, ...).
        unit: ``ms`` (a latency) or ``MMAC`` (millions of MACs).
        base: the cost every network pays (stem, head, call overhead).
        table: per gene, per choice, the cost that choice adds.
        note: how exact the model is (a surrogate's fit error), empty for an exact one.
    """

    source: str
    unit: str
    base: float
    table: tuple[tuple[float, ...], ...]
    note: str = ""

    def of(self, genome: Sequence[int]) -> float:
        """The cost of one genome."""
        if len(genome) != len(self.table):
            raise InvalidInputError(
                f"genome {tuple(genome)!r} has {len(genome)} genes; costs know {len(self.table)}"
            )
        return self.base + sum(self.table[i][int(c)] for i, c in enumerate(genome))

    def padded(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The table as a (genes, max choices) tensor, 0 where a gene has fewer choices."""
        width = max(len(row) for row in self.table)
        rows = [list(row) + [0.0] * (width - len(row)) for row in self.table]
        return torch.tensor(rows, device=device, dtype=dtype)

    def expected(self, probs: torch.Tensor) -> torch.Tensor:
        """``base + sum(probs * table)``: the expected cost, differentiable in ``probs`` (genes x choices,
        each row a distribution, 0 on choices a gene lacks)."""
        table = self.padded(probs.device, probs.dtype)
        if probs.shape != table.shape:
            raise InvalidInputError(
                f"probabilities of shape {tuple(probs.shape)}; costs need {tuple(table.shape)}"
            )
        return self.base + (probs * table).sum()

    def cheapest(self) -> tuple[Genome, float]:
        """The cheapest genome (first cheapest choice of every gene) and its cost."""
        genome = tuple(int(np.argmin(row)) for row in self.table)
        return genome, self.of(genome)

    def project(self, scores: np.ndarray, limit: float) -> Genome:
        """The genome of highest total ``scores[i, c]`` whose cost is at most ``limit``.

        A multiple-choice knapsack, solved by its Lagrangian: for a price ``lam`` every gene takes
        ``argmax(score - lam * cost)``; bisection finds the lowest price whose genome fits, then single
        gene changes that raise the score and still fit are taken, best first. ``limit`` must be at
        least :meth:`cheapest`'s cost (the infinite price gives that genome).
        """
        costs = [np.asarray(row, dtype=np.float64) for row in self.table]
        rows = [np.asarray(scores[i, : len(row)], dtype=np.float64) for i, row in enumerate(costs)]

        def priced(lam: float) -> list[int]:
            # Ties on (score - lam*cost) go to the cheaper choice, so a huge price gives the cheapest genome.
            return [int(np.lexsort((c, -(s - lam * c)))[0]) for s, c in zip(rows, costs)]

        def fits(genome: Sequence[int]) -> bool:
            return self.of(genome) <= limit + 1e-9

        genome = priced(0.0)
        if not fits(genome):
            lo, hi = 0.0, 1.0
            while not fits(priced(hi)) and hi < 1e12:
                lo, hi = hi, hi * 4
            if not fits(priced(hi)):
                genome = list(self.cheapest()[0])
            else:
                for _ in range(60):
                    mid = (lo + hi) / 2
                    lo, hi = (lo, mid) if fits(priced(mid)) else (mid, hi)
                genome = priced(hi)
        while True:
            best = None
            for i, s in enumerate(rows):
                for c in range(len(s)):
                    gain = s[c] - s[genome[i]]
                    better = best is None or gain > best[0]
                    if gain > 1e-12 and better and fits(genome[:i] + [c] + genome[i + 1 :]):
                        best = (gain, i, c)
            if best is None:
                return tuple(genome)
            genome[best[1]] = best[2]


def load_arch_costs(spec: str, space: SearchSpace) -> ArchCosts:
    """The cost model ``spec`` names (:data:`SOURCES`) for ``space``; a file that does not fit the
    space, or an unknown spec, raises a one-line InvalidInputError."""
    if not isinstance(spec, str) or not spec:
        raise InvalidInputError(f"latency must be one of {', '.join(SOURCES)}, got {spec!r}")
    kind, sep, path = spec.partition(":")
    if spec == "macs":
        return _macs_costs(space)
    if not sep or not path or kind not in ("lut", "predictor", "table"):
        raise InvalidInputError(f"latency {spec!r} is not one of {', '.join(SOURCES)}")
    try:
        if kind == "lut":
            return _lut_costs(spec, path, space)
        return _nb201_costs(spec, kind, path, space)
    except InvalidInputError:
        raise
    except SlimforgeError as exc:  # unreadable files: one line, as the readers word it
        raise InvalidInputError(f"latency {spec!r}: {exc}") from None


def _lut_costs(spec: str, path: str, space: SearchSpace) -> ArchCosts:
    from slimforge.hardware import read_lut

    lut = read_lut(path)
    choices = list(space.num_choices)
    table_choices = [1 + max(e.choice for e in lut.entries if e.part == "layer" and e.layer == i)
                     for i in range(lut.num_genes)]  # fmt: skip
    saved_repr = lut.header.get("space_repr")
    if (
        lut.space != space.name
        or table_choices != choices
        or (saved_repr and not space.matches_network_key(saved_repr))
    ):
        raise InvalidInputError(
            f"lookup table {path} is for {saved_repr or lut.space} ({len(table_choices)} genes), not for "
            f"{space!r} ({len(choices)} genes); train with the table's space options or build a table "
            f"for this space with `slimforge lut build`"
        )
    # predict() = scale * (fixed parts + chosen layers - (parts - 1) * call) + offset: additive once
    # the call overhead is charged to every layer that runs and taken back once from the fixed parts.
    by_part = {(e.part, e.layer, e.choice): e for e in lut.entries}
    call = by_part.get(("call", None, None))
    call_ms = call.latency_ms if call is not None else 0.0
    scale = lut.scale("median")
    fixed = [e.latency_ms for e in lut.entries if e.part in ("stem", "tail")]
    base = scale * (sum(fixed) - (len(fixed) - 1) * call_ms) + lut.offset_ms("median")
    table = tuple(
        tuple(
            scale * (by_part[("layer", i, c)].latency_ms - call_ms)
            if by_part[("layer", i, c)].num_runs
            else 0.0
            for c in range(n)
        )
        for i, n in enumerate(choices)
    )
    return ArchCosts(spec, "ms", base, table)


def _nb201_costs(spec: str, kind: str, path: str, space: SearchSpace) -> ArchCosts:
    from slimforge.hardware import load_predictor, read_device_table

    if space.name != "nb201" or list(space.num_choices) != [5] * 6:
        raise InvalidInputError(
            f"latency {spec!r}: predictors and device tables describe nb201 cells, not {space.name}; "
            "for a layer-wise space use lut:FILE"
        )
    genomes = np.array(list(itertools.product(range(5), repeat=6)), dtype=np.int64)
    if kind == "predictor":
        figures = load_predictor(path).predict(genomes)
    else:
        device = read_device_table(path, space="nb201")
        figures = device.latency_ms[device.rows_of(genomes)]
    # Least squares on the one-hot design with each edge's "none" column dropped (the base absorbs it).
    design = np.zeros((len(genomes), 1 + 6 * 4))
    design[:, 0] = 1.0
    for edge in range(6):
        for op in range(1, 5):
            design[:, 1 + edge * 4 + (op - 1)] = genomes[:, edge] == op
    coef = np.linalg.lstsq(design, figures, rcond=None)[0]
    error = np.abs(design @ coef - figures)
    table = tuple((0.0, *(float(coef[1 + edge * 4 + k]) for k in range(4))) for edge in range(6))
    note = (
        f"additive surrogate of {kind} {path} over all {_NB201_CELLS} cells: mean |error| "
        f"{error.mean():.4g} ms, max {error.max():.4g} ms (figures {figures.min():.4g}-{figures.max():.4g} ms)"
    )
    return ArchCosts(spec, "ms", float(coef[0]), table, note)


def _macs_costs(space: SearchSpace) -> ArchCosts:
    from slimforge.hardware import count_macs, split_layerwise

    shape = tuple(getattr(space, "input_shape", None) or (1, 3, 32, 32))
    try:
        parts = split_layerwise(space, shape)
    except InvalidInputError:
        parts = None
    if parts is not None:
        base = count_macs(parts.stem, parts.stem_shape) + count_macs(parts.tail, parts.tail_shape)
        table = tuple(
            tuple(0.0 if b is None else count_macs(b, at) / 1e6 for b in blocks)
            for blocks, at in zip(parts.layers, parts.layer_shapes)
        )
        return ArchCosts("macs", "MMAC", base / 1e6, table)
    if space.name == "nb201" and list(space.num_choices) == [5] * 6:
        return _nb201_macs(space, shape)
    # Any other space: one gene changed at a time from the all-first-choice network (exact when the
    # MACs add up over genes, as NAS-Bench-201's graph, which runs every non-none edge, does).
    ref = space.validate(tuple(0 for _ in space.num_choices))

    def macs(genome: Sequence[int]) -> float:
        return count_macs(space.build(space.validate(tuple(genome))), shape) / 1e6

    at_ref = macs(ref)
    table = tuple(
        tuple(0.0 if c == 0 else macs(ref[:i] + (c,) + ref[i + 1 :]) - at_ref for c in range(n))
        for i, n in enumerate(space.num_choices)
    )
    return ArchCosts("macs", "MMAC", at_ref, table)


def _nb201_macs(space: SearchSpace, shape: tuple[int, ...]) -> ArchCosts:
    from slimforge.hardware import NB201Features

    # Counted analytically (graph view: every non-none edge runs), no network built.
    features = NB201Features(
        channels=int(space.channels),  # type: ignore[attr-defined]
        cells_per_stage=int(space.cells_per_stage),  # type: ignore[attr-defined]
        input_size=int(shape[-1]),
        num_classes=10,
    )
    genomes = np.zeros((1 + 6 * 5, 6), dtype=np.int64)
    for edge in range(6):
        genomes[1 + edge * 5 : 1 + (edge + 1) * 5, edge] = np.arange(5)
    macs = features.cell_macs(genomes) / 1e6
    table = tuple(tuple(float(macs[1 + edge * 5 + op] - macs[0]) for op in range(5)) for edge in range(6))
    return ArchCosts("macs", "MMAC", float(macs[0]), table)


def check_limit(costs: ArchCosts, limit: float, option: str = "limit_ms") -> None:
    """Raise a one-line InvalidInputError when no network of ``costs`` fits under ``limit``."""
    _, cheapest = costs.cheapest()
    if not math.isfinite(limit) or limit < cheapest - 1e-9:
        raise InvalidInputError(
            f"{option}={limit:g} {costs.unit} is below the cheapest network under {costs.source} "
            f"({cheapest:.4g} {costs.unit}); the smallest reachable limit is {cheapest:.4g}"
        )
