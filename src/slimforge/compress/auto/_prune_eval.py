"""How the pruning search costs and scores a policy: the candidate evaluator, costs, the uniform baseline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from slimforge.compress.auto._common import measure_model_latencies
from slimforge.compress.auto._estimate import EstimateData, estimate_accuracy
from slimforge.compress.auto._settings import EstimateConfig
from slimforge.compress.auto._spaces import PrunePolicySpace
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = ["PrunePolicyEvaluator", "cost_function", "float_bytes", "uniform_ratio_for_budget"]


def float_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s parameters as float32 (how slimforge's structured pruning deploys them)."""
    return 4 * sum(p.numel() for p in model.parameters())


def cost_function(
    metric: str, input_shape: Sequence[int], latency_cap_s: float
) -> Callable[[nn.Module], float]:
    """``metric`` (``macs``, ``bytes`` or ``latency_ms``) of a model, as the pruning search counts it."""
    from slimforge.hardware import count_macs

    if metric == "macs":
        return lambda m: float(count_macs(m, tuple(input_shape)))
    if metric == "bytes":
        return lambda m: float(float_bytes(m))
    return lambda m: measure_model_latencies([m], input_shape, time_cap_s=latency_cap_s)[0][0]


class PrunePolicyEvaluator(Evaluator):
    """Error (estimate), MACs, bytes and optionally measured latency of a pruning policy.

    It holds the model and the estimate's tensors, so it runs in-process (no process executor).
    """

    def __init__(
        self,
        space: PrunePolicySpace,
        data: EstimateData,
        config: EstimateConfig,
        *,
        latency_cap_s: float | None = None,
    ) -> None:
        metrics = ("error", "accuracy", "macs", "macs_ratio", "num_params", "bytes")
        super().__init__(space, metrics + (("latency_ms",) if latency_cap_s else ()))
        from slimforge.hardware import count_macs

        self.data = data
        self.config = config
        self.latency_cap_s = latency_cap_s
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
        if self.latency_cap_s:
            latencies, _ = measure_model_latencies([model], space.input_shape, time_cap_s=self.latency_cap_s)
            out["latency_ms"] = latencies[0]
        acc = estimate_accuracy(model, self.data, self.config)
        out.update(accuracy=acc, error=100.0 - acc)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "estimate": self.config.to_dict()}


def uniform_ratio_for_budget(
    cost: Callable[[float], float], bound: float, *, max_ratio: float = 0.8, iterations: int = 10
) -> float | None:
    """The smallest uniform ratio in [0, ``max_ratio``] whose ``cost(ratio)`` is within ``bound`` (bisection).

    ``cost`` should not increase with the ratio (MACs and bytes do not; a measured latency nearly so).
    Returns 0.0 when the unpruned model already meets the bound, None when ``max_ratio`` does not.
    The search passes the largest ratio of its policy space, so the uniform baseline draws from the
    same range as each group of the searched policy.
    """
    if cost(0.0) <= bound:
        return 0.0
    if cost(max_ratio) > bound:
        return None
    low, high = 0.0, max_ratio
    for _ in range(iterations):
        mid = (low + high) / 2
        if cost(mid) <= bound:
            high = mid
        else:
            low = mid
    return round(high, 4)
