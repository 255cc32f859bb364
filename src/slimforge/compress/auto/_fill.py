"""Budget filling: spend what the chosen policy leaves of the budget, most sensitive layer first.

A searched policy usually stops short of its budget (the estimate is noisy, and the search trades
cost against it), so it would be compared with a uniform baseline that uses more of the same
resources. :func:`fill_budget` moves one gene at a time one step towards the more expensive end
(un-pruning a group by one ratio step, one more bit for a layer), always the most sensitive gene
that still fits: after every accepted step it starts again from the top of the order. A gene whose
step does not fit is not tried again: costs only grow as genes move that way, so it would not fit
later either. The result is maximal: no single step of any gene fits any more, so the policy is
within one gene's step of the budget.

A timed cost (latency) is noisy, and keeping the steps whose one timing fits keeps, among the steps
near the bound, those whose timing came out low: filled policies then measured over their bound
more often than under it at the final measurement (issue 23: 5 of 9). So under a timed budget a
step that fits is timed once more and kept only when both timings fit; its cost is the larger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.spaces import Genome

__all__ = ["FillResult", "FillStep", "fill_budget"]


@dataclass(frozen=True)
class FillStep(JsonRecord):
    """One accepted step: the gene (layer) moved, its new value, the cost after it."""

    layer: str
    value: float
    cost: float


@dataclass(frozen=True)
class FillResult(JsonRecord):
    """The filled policy (genome as a string in the space's form), its cost before and after, the steps."""

    policy: str
    cost_before: float
    cost_after: float
    bound: float
    steps: tuple[FillStep, ...]
    evaluations: int


def fill_budget(
    genome: Genome,
    num_choices: Sequence[int],
    cost: Callable[[Genome], float],
    bound: float,
    order: Sequence[int],
    *,
    direction: int,
    names: Sequence[str] | None = None,
    values: Callable[[int, int], float] | None = None,
    to_string: Callable[[Genome], str] = lambda g: ",".join(map(str, g)),
    timed: bool = False,
) -> tuple[Genome, FillResult]:
    """Move genes of ``genome`` one step in ``direction`` while ``cost`` stays within ``bound``.

    Args:
        genome: the chosen policy (within the bound).
        num_choices: choices per gene.
        cost: the budget's cost of a genome (it must not fall as genes move in ``direction``).
        bound: the budget.
        order: gene indices, most sensitive first (the first to get its step back).
        direction: +1 (a higher index costs more: more bits) or -1 (a lower one does: a smaller ratio).
        names, values, to_string: how genes, their values and genomes read in the result.
        timed: ``cost`` is a timing, so a policy that met the bound when the search timed it can be
            timed over it here; it is then returned unchanged (no steps; ``cost_before`` says by how
            much) instead of raising. A step is kept only when two timings of it fit (see above).

    Returns:
        The filled genome and what was done.
    """
    if direction not in (-1, 1):
        raise InvalidInputError(f"fill direction must be +1 or -1, got {direction!r}")
    if sorted(order) != list(range(len(genome))):
        raise InvalidInputError(f"the fill order must list every gene once, got {list(order)!r}")
    current = tuple(genome)
    before = cost(current)
    if before > bound and timed:
        return current, FillResult(to_string(current), before, before, bound, (), 1)
    if before > bound:
        raise InvalidInputError(f"cannot fill a policy that is over its budget ({before:.4g} > {bound:.4g})")
    now, steps, blocked, evaluations = before, [], set(), 1
    moved = True
    while moved:
        moved = False
        for i in order:
            target = current[i] + direction
            if i in blocked or not 0 <= target < num_choices[i]:
                continue
            candidate = (*current[:i], target, *current[i + 1 :])
            c = cost(candidate)
            evaluations += 1
            if timed and c <= bound:  # confirm a fitting timing with a second one
                c = max(c, cost(candidate))
                evaluations += 1
            if c <= bound:
                current, now, moved = candidate, c, True
                name = names[i] if names is not None else str(i)
                steps.append(FillStep(name, values(i, target) if values else float(target), c))
                break
            blocked.add(i)
    return current, FillResult(to_string(current), before, now, bound, tuple(steps), evaluations)
