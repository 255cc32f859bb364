"""How the pruning search costs and scores a policy: costs, the candidate evaluator, the sensitivity prior.

Latency is measured as a ratio: each model runs interleaved with the unpruned original in one process
(ONNX Runtime, 1 thread, batch 1), and its latency is the original's reference latency times that
ratio. On a busy machine back-to-back timings drift with the load; interleaved ones share it, so the
ratio holds, and a ``latency=F`` budget bounds exactly that ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any

from torch import nn

from slimforge.compress.auto._common import measure_model_latencies
from slimforge.compress.auto._estimate import EstimateData, estimate_accuracy
from slimforge.compress.auto._results import AutoRow, GroupSensitivity
from slimforge.compress.auto._settings import EstimateConfig
from slimforge.compress.auto._spaces import PrunePolicySpace
from slimforge.data import DatasetSplits
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = [
    "GroupSensitivity",
    "LatencyRatio",
    "PrunePolicyEvaluator",
    "cost_function",
    "float_bytes",
    "over_bound_note",
    "prune_row",
    "prune_sensitivity",
    "sensitivity_guide",
    "uniform_ratio_for_budget",
]


def float_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s parameters as float32 (how slimforge's structured pruning deploys them)."""
    return 4 * sum(p.numel() for p in model.parameters())


class LatencyRatio:
    """A model's latency as ``reference_ms`` times its ratio to ``original``, timed interleaved with it.

    Args:
        original: the unpruned model (the ratio's denominator).
        input_shape: input, batch 1 included.
        time_cap_s: seconds of timed runs per model and measurement.
    """

    def __init__(self, original: nn.Module, input_shape: Sequence[int], time_cap_s: float) -> None:
        self.original = original
        self.input_shape = tuple(input_shape)
        self.time_cap_s = time_cap_s
        latencies, self.conditions = measure_model_latencies(
            [original, original], self.input_shape, time_cap_s=time_cap_s
        )
        #: the original's latency (ms), the median of two interleaved measurements.
        self.reference_ms = (latencies[0] + latencies[1]) / 2

    def ratio(self, model: nn.Module, *, time_cap_s: float | None = None) -> float:
        """``model``'s latency over the original's, measured interleaved (``time_cap_s``: longer runs)."""
        cap = self.time_cap_s if time_cap_s is None else time_cap_s
        latencies, _ = measure_model_latencies([self.original, model], self.input_shape, time_cap_s=cap)
        return latencies[1] / latencies[0]

    def __call__(self, model: nn.Module, *, time_cap_s: float | None = None) -> float:
        return self.reference_ms * self.ratio(model, time_cap_s=time_cap_s)


def cost_function(
    metric: str, input_shape: Sequence[int], latency: LatencyRatio | None = None
) -> Callable[[nn.Module], float]:
    """``metric`` (``macs``, ``bytes`` or ``latency_ms``) of a model, as the pruning search counts it."""
    from slimforge.hardware import count_macs

    if metric == "macs":
        return lambda m: float(count_macs(m, tuple(input_shape)))
    if metric == "bytes":
        return lambda m: float(float_bytes(m))
    if latency is None:
        raise ValueError("a latency_ms cost needs a LatencyRatio")
    return latency


class PrunePolicyEvaluator(Evaluator):
    """Error (estimate), MACs, bytes and optionally measured latency of a pruning policy.

    It holds the model and the estimate's tensors, so it runs in-process (no process executor).
    ``latency`` (a :class:`LatencyRatio`) adds ``latency_ms``, timed interleaved with the original.
    """

    def __init__(
        self,
        space: PrunePolicySpace,
        data: EstimateData,
        config: EstimateConfig,
        *,
        latency: LatencyRatio | None = None,
    ) -> None:
        metrics = ("error", "accuracy", "macs", "macs_ratio", "num_params", "bytes")
        super().__init__(space, metrics + (("latency_ms",) if latency is not None else ()))
        from slimforge.hardware import count_macs

        self.data = data
        self.config = config
        self.latency = latency
        self.macs0 = count_macs(space.model, space.input_shape)

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        from slimforge.hardware import count_macs

        space: PrunePolicySpace = self.space  # type: ignore[assignment]
        model = space.build(genome, num_classes=1)
        macs = count_macs(model, space.input_shape)
        out = {
            "macs": float(macs),
            "macs_ratio": macs / self.macs0,
            "num_params": float(sum(p.numel() for p in model.parameters())),
            "bytes": float(float_bytes(model)),
        }
        if self.latency is not None:
            out["latency_ms"] = self.latency(model)
        acc = estimate_accuracy(model, self.data, self.config)
        out.update(accuracy=acc, error=100.0 - acc)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "estimate": self.config.to_dict()}


def uniform_ratio_for_budget(
    cost: Callable[[float], float],
    bound: float,
    *,
    max_ratio: float = 0.8,
    scan_step: float = 0.05,
    iterations: int = 6,
) -> float | None:
    """The least-pruned uniform ratio in [0, ``max_ratio``] whose ``cost(ratio)`` is within ``bound``.

    A measured latency is not monotonic in the ratio (on ONNX Runtime widths that are multiples of 8
    run faster than narrower ones that are not: ResNet-20 at ratio 0.282 measured 1.2x the original,
    at 0.25 0.85x), so a bisection over the whole range can land anywhere. Instead: scan the ratios
    ``0, scan_step, 2 * scan_step, ..., max_ratio`` from the least pruned, and at the first one that
    meets the bound bisect between it and the scan point before it (``iterations`` halvings; the
    returned ratio was always measured within the bound). The result is then measured once more; if
    that second measurement is over the bound (a noisy timing let it through), the scan point itself
    is tried, and failing that the scan goes on. For a monotonic cost (MACs, bytes) this is the
    bisection's answer.

    A cheap width between two scan points that both miss the bound is not found; a finer
    ``scan_step`` finds more of them, at one ``cost`` call per point.

    Returns 0.0 when the unpruned model already meets the bound, None when no scanned ratio does.
    The search passes the largest ratio of its policy space, so the uniform baseline draws from the
    same range as each group of the searched policy.

    Raises:
        InvalidInputError: ``max_ratio`` outside [0, 1), ``scan_step`` not positive, ``iterations`` < 0.
    """
    from slimforge.errors import InvalidInputError

    if not 0.0 <= max_ratio < 1.0:
        raise InvalidInputError(f"max_ratio must be in [0, 1), got {max_ratio!r}")
    if not scan_step > 0.0:
        raise InvalidInputError(f"scan_step must be positive, got {scan_step!r}")
    if iterations < 0:
        raise InvalidInputError(f"iterations must be >= 0, got {iterations!r}")
    if cost(0.0) <= bound:
        return 0.0
    count = int(max_ratio / scan_step + 1e-9)
    grid = [round(k * scan_step, 6) for k in range(count + 1)]
    if grid[-1] < max_ratio:
        grid.append(max_ratio)
    for low, high in pairwise(grid):
        if cost(high) > bound:
            continue
        point, below = high, low
        for _ in range(iterations):
            mid = (below + point) / 2
            if cost(mid) <= bound:
                point = mid
            else:
                below = mid
        for answer in dict.fromkeys((point, high)):  # the bisected ratio, else the scan point
            if cost(answer) <= bound:
                return round(answer, 4)
    return None


def over_bound_note(
    name: str, metric: str, measured: float, bound: float, *, search_cost: float | None = None
) -> str:
    """Why a final model's ``measured`` cost exceeds ``bound``, for the record's message ("" when it does not).

    Args:
        name: the model (``searched``, ``uniform 0.42``).
        metric: the budget's metric; only a timed one (``latency_ms``) can move between measurements.
        measured: its cost at the final measurement.
        bound: the budget's bound.
        search_cost: its cost as the search (or the uniform ratio's choice, or budget filling) measured
            it, which met the bound; None when not known.
    """
    if measured <= bound * (1 + 1e-9):
        return ""
    over = (
        f"{name} measured {metric} {measured:.4g} at the final measurement, "
        f"{100 * (measured / bound - 1):.2f} % over the bound {bound:.4g}"
    )
    if metric != "latency_ms":
        return f"; {over}"
    earlier = (
        ""
        if search_cost is None
        else f" (it was {search_cost:.4g} when chosen, {100 * (1 - search_cost / bound):.2f} % under it)"
    )
    return (
        f"; {over}{earlier}: measurement noise, since latency is timed and two timings of one model can "
        "differ by more than that margin on a loaded machine; it was chosen (and filled) by shorter timings "
        "that each had to fit, which favours the low ones, and was timed once more at the end, "
        "interleaved with the original"
    )


def prune_sensitivity(
    space: PrunePolicySpace, data: EstimateData, config: EstimateConfig, *, ratio: float | None = None
) -> tuple[GroupSensitivity, ...]:
    """Each group pruned alone at ``ratio`` (default: the space's largest), most sensitive per MAC first.

    Scored with ``config`` without its training steps (BN re-calibration and the score only): the
    prior costs one cheap estimate per group (Li et al., "Pruning Filters for Efficient ConvNets",
    ICLR 2017, rank layers by such a sensitivity analysis).
    """
    import copy

    from slimforge.hardware import count_macs

    quick = replace(config, finetune_steps=0, distill_steps=0)
    ratio = max(space.values) if ratio is None else ratio
    macs0 = count_macs(space.model, space.input_shape)
    base = estimate_accuracy(copy.deepcopy(space.model), data, quick)
    rows = []
    for layer in space.layers:
        policy = {g: (ratio if g == layer else 0.0) for g in space.layers}
        model = space.build(space.genome_of(policy), num_classes=1)
        saved = macs0 - count_macs(model, space.input_shape)
        drop = base - estimate_accuracy(model, data, quick)
        rows.append(GroupSensitivity(layer, ratio, drop, int(saved), drop / max(saved / macs0, 1e-9)))
    return tuple(sorted(rows, key=lambda r: -r.drop_per_macs))


def sensitivity_guide(layers: Sequence[str], ranking: Sequence[Any]) -> tuple[float, ...]:
    """+1 for the first layer of ``ranking`` (most sensitive) down to -1 for the last, linearly in rank."""
    if len(layers) == 1:
        return (0.0,)
    rank = {r.layer: i for i, r in enumerate(ranking)}
    return tuple(1.0 - 2.0 * rank[n] / (len(layers) - 1) for n in layers)


def prune_row(
    name: str,
    policy: str,
    model: nn.Module,
    splits: DatasetSplits,
    input_shape: Sequence[int],
    *,
    estimate: float,
    cost: float,
    bound: float,
    epochs: int,
) -> AutoRow:
    """The comparison row of a pruned ``model``, measured on the validation and test splits."""
    from slimforge.hardware import count_macs
    from slimforge.training import accuracy

    return AutoRow(
        name=name,
        policy=policy,
        estimate_accuracy_pct=estimate,
        val_accuracy_pct=accuracy(model, splits.val),
        test_accuracy_pct=None if splits.test is None else accuracy(model, splits.test),
        macs=count_macs(model, tuple(input_shape)),
        num_params=sum(p.numel() for p in model.parameters()),
        bytes=float_bytes(model),
        latency_ms=None,
        cost=cost,
        within_budget=cost <= bound * (1 + 1e-9),
        finetune_epochs=epochs,
    )
