"""The records the policy searches return (they round-trip through JSON): rows, fronts, results."""

from __future__ import annotations

from dataclasses import dataclass

from slimforge.compress.auto._estimate import EstimateNoise
from slimforge.compress.auto._fill import FillResult
from slimforge.compress.prune import SkippedLayer
from slimforge.compress.quantize import BitSensitivity
from slimforge.io import JsonRecord

__all__ = [
    "AutoBitsResult",
    "AutoPruneResult",
    "AutoRow",
    "BaselineFront",
    "GroupSensitivity",
    "JointSearchResult",
    "PolicyPoint",
    "Reranked",
]


@dataclass(frozen=True)
class PolicyPoint(JsonRecord):
    """One point of a searched front: the policy (values in gene order), its estimate and its cost."""

    policy: str
    error: float
    cost: float
    feasible: bool


@dataclass(frozen=True)
class AutoRow(JsonRecord):
    """One compressed model of a comparison, measured after its finetune.

    ``estimate_accuracy_pct`` is the search's estimate (before finetuning, validation split);
    ``val_accuracy_pct`` / ``test_accuracy_pct`` are measured after finetuning. ``cost`` is the
    budget's metric, ``within_budget`` whether it meets the bound. ``bytes`` counts weights as stored
    (4 bytes per float parameter; packed k-bit weights plus their scales or codebooks for quantized
    layers); ``latency_ms`` is ONNX Runtime's (1 thread, batch 1) where measured.
    """

    name: str
    policy: str
    estimate_accuracy_pct: float
    val_accuracy_pct: float
    test_accuracy_pct: float | None
    macs: int
    num_params: int
    bytes: int
    latency_ms: float | None
    cost: float
    within_budget: bool
    finetune_epochs: int
    avg_weight_bits: float | None = None
    bitops: float | None = None


@dataclass(frozen=True)
class Reranked(JsonRecord):
    """One of the best candidates, re-scored after filling: the search's estimate and the re-ranking one."""

    policy: str
    search_estimate_pct: float
    rerank_estimate_pct: float
    cost: float


@dataclass(frozen=True)
class GroupSensitivity(JsonRecord):
    """What pruning one group alone does: the estimate's drop, the MACs it saves, drop per MACs share.

    ``drop_per_macs`` is the drop (points) divided by the share of the original's MACs saved: the
    price in accuracy of each MAC the group gives up.
    """

    layer: str
    ratio: float
    estimate_drop_pct: float
    macs_saved: int
    drop_per_macs: float


@dataclass(frozen=True)
class AutoPruneResult(JsonRecord):
    """What :func:`auto_prune` found: the policy, the searched front, and the comparison with uniform.

    ``budget_bound`` is the absolute bound on ``budget_metric`` (``macs``, ``latency_ms`` or ``bytes``);
    ``reference`` the original's costs. ``policy`` maps each prunable group to its ratio (groups in
    forward order, also in ``groups``); ``front`` lists the feasible non-dominated policies as
    comma-separated ratios in that order. ``rows`` are the original, the searched policy and the
    uniform baseline, each finetuned ``finetune_epochs`` (the original is not finetuned).
    ``sensitivity`` is the prior that guides the search and orders the budget filling (``fill``: what
    it did; the policy is the filled one), ``estimate_noise`` the chosen policy's estimate repeated
    with other image draws. Under a latency budget the rows' ``cost`` is the original's reference
    latency times their ratio to it, timed interleaved (``latency_ms`` is the raw median).
    """

    model: str
    data: str
    budget: str
    budget_metric: str
    budget_bound: float
    budget_met: bool
    message: str
    reference: dict[str, float]
    criterion: str
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    groups: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    policy: dict[str, float]
    uniform_ratio: float | None
    front: tuple[PolicyPoint, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int
    latency_conditions: str | None
    macs_note: str
    sensitivity: tuple[GroupSensitivity, ...] = ()
    fill: FillResult | None = None
    estimate_noise: EstimateNoise | None = None
    reranked: tuple[Reranked, ...] = ()


@dataclass(frozen=True)
class AutoBitsResult(JsonRecord):
    """What :func:`auto_bits` found: the bit policy, the searched front, and the uniform baselines.

    ``policy`` maps each quantized layer to its bit-width (``layers`` gives the gene order; the
    front's policies are comma-separated bit-widths in that order). ``uniform_bytes`` is the size
    of the model at every uniform bit-width of the choices. ``rows`` are the original (float), the
    searched policy and the uniform baselines, each finetuned with the same quantization-aware
    epochs and then batch-norm re-calibrated.
    """

    model: str
    data: str
    budget: str
    budget_bound_bytes: float
    budget_met: bool
    message: str
    float_bytes: int
    quantizer: str
    bit_choices: tuple[int, ...]
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    layers: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    sensitivity: tuple[BitSensitivity, ...]
    policy: dict[str, int]
    uniform_bytes: dict[str, int]
    equal_size_bits: int | None
    front: tuple[PolicyPoint, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int
    cost_note: str = ""
    fill: FillResult | None = None
    estimate_noise: EstimateNoise | None = None
    reranked: tuple[Reranked, ...] = ()


@dataclass(frozen=True)
class BaselineFront(JsonRecord):
    """The float architecture search's front of one sequential baseline (costs at uniform ``bits``)."""

    bits: int
    front: tuple[PolicyPoint, ...]


@dataclass(frozen=True)
class JointSearchResult(JsonRecord):
    """What :func:`joint_search` found, and the sequential baselines at the same budget.

    ``reference`` holds the costs fractions are taken of: the space's largest network (the block
    with most MACs in every layer) at 8-bit weights and ``activation_bits`` activations.
    ``rows`` are the joint result and, per bit-width of ``baseline_bits``, "float architecture
    search, then uniform quantization"; every row is the quantized inherited-weight network
    (finetuned ``finetune_epochs`` with quantization-aware training when > 0), BN re-calibrated,
    accuracy on validation and test. ``policy`` is the joint genome as ``ARCH|BITS,...`` and
    ``bits`` maps the standalone network's layers to their bit-widths.
    """

    supernet: str
    data: str
    budget: str
    budget_metric: str
    budget_bound: float
    budget_met: bool
    message: str
    reference: dict[str, float]
    cost_model: str
    activation_bits: int
    bit_choices: tuple[int, ...]
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    policy: str
    bits: dict[str, int]
    front: tuple[PolicyPoint, ...]
    baseline_fronts: tuple[BaselineFront, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int
