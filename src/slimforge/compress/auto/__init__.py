"""Automated compression: per-layer policies searched under a cost budget, compared with uniform ones.

>>> from slimforge.compress.auto import auto_prune
>>> result = auto_prune("runs/resnet20", "npz:../shared/data/cifar10_subset.npz", "latency=0.7",
...                     "runs/resnet20-amc", seed=1)                                   # doctest: +SKIP

Three searches share one engine (:func:`run_task` over a :class:`PolicyTask`): :func:`auto_prune`
(AMC-style, a pruning ratio per layer group), :func:`auto_bits` (HAQ-style, a weight bit-width per
layer) and :func:`joint_search` (APQ-style, architecture and bit-widths on a trained supernet). Each
takes a :class:`SearchSettings` record (evaluations, algorithm, seeds, the candidate estimate
:class:`EstimateConfig`, the identical finetune of the final models) and its own options
(:class:`PruneOptions`, :class:`BitsOptions`, :class:`JointOptions`). Budgets are ``KEY=VALUE``
(:func:`parse_budget`, keys in :data:`BUDGET_KEYS`; a bare number is the search's default key,
measured latency for pruning). The pieces the searches share: the estimate and its noise
(:func:`estimate_accuracy`, :func:`estimate_noise`), the sensitivity prior that guides the search
(:func:`prune_sensitivity`), budget filling (:func:`fill_budget`), and :func:`audit_estimates`, which
measures which named estimate (:data:`ESTIMATES`) ranks policies best against finetuned accuracy.
"""

from __future__ import annotations

from slimforge.compress.auto._audit import (
    ESTIMATES,
    AuditedEstimate,
    EstimateAudit,
    audit_estimates,
    format_estimate_audit,
)
from slimforge.compress.auto._bits import (
    BITS_BUDGET_KEYS,
    COST_NOTE,
    BitPolicyEvaluator,
    BitsOptions,
    BitsTask,
    auto_bits,
)
from slimforge.compress.auto._budget import BUDGET_KEYS, Budget, BudgetKey, parse_budget
from slimforge.compress.auto._common import finetune_model, load_source, load_splits, measure_model_latencies
from slimforge.compress.auto._engine import (
    BudgetUnreachableError,
    Finished,
    Found,
    PolicyTask,
    SavedModel,
    SearchSetup,
    closest,
    front_points,
    run_search,
    run_task,
    search_settings,
)
from slimforge.compress.auto._estimate import (
    SCORES,
    EstimateData,
    EstimateNoise,
    estimate_accuracy,
    estimate_noise,
    has_batchnorm,
)
from slimforge.compress.auto._fill import FillResult, FillStep, fill_budget
from slimforge.compress.auto._joint import JOINT_BUDGET_KEYS, JointOptions, JointTask, joint_search
from slimforge.compress.auto._joint_eval import JointEvaluator
from slimforge.compress.auto._joint_space import JointCosts, JointSpace, quantized_paths
from slimforge.compress.auto._prune import PRUNE_BUDGET_KEYS, PruneOptions, PruneTask, auto_prune
from slimforge.compress.auto._prune_eval import (
    GroupSensitivity,
    LatencyRatio,
    PrunePolicyEvaluator,
    prune_sensitivity,
    sensitivity_guide,
    uniform_ratio_for_budget,
)
from slimforge.compress.auto._report import format_auto_bits, format_auto_prune, format_joint
from slimforge.compress.auto._results import (
    AutoBitsResult,
    AutoPruneResult,
    AutoRow,
    BaselineFront,
    JointSearchResult,
    PolicyPoint,
    Reranked,
)
from slimforge.compress.auto._settings import ESTIMATE_SCORES, EstimateConfig, SearchSettings, apply_fields
from slimforge.compress.auto._spaces import BitPolicySpace, LayerPolicySpace, PrunePolicySpace

__all__ = [
    "BITS_BUDGET_KEYS",
    "BUDGET_KEYS",
    "COST_NOTE",
    "ESTIMATES",
    "ESTIMATE_SCORES",
    "JOINT_BUDGET_KEYS",
    "PRUNE_BUDGET_KEYS",
    "SCORES",
    "AuditedEstimate",
    "AutoBitsResult",
    "AutoPruneResult",
    "AutoRow",
    "BaselineFront",
    "BitPolicyEvaluator",
    "BitPolicySpace",
    "BitsOptions",
    "BitsTask",
    "Budget",
    "BudgetKey",
    "BudgetUnreachableError",
    "EstimateAudit",
    "EstimateConfig",
    "EstimateData",
    "EstimateNoise",
    "FillResult",
    "FillStep",
    "Finished",
    "Found",
    "GroupSensitivity",
    "JointCosts",
    "JointEvaluator",
    "JointOptions",
    "JointSearchResult",
    "JointSpace",
    "JointTask",
    "LatencyRatio",
    "LayerPolicySpace",
    "PolicyPoint",
    "PolicyTask",
    "PruneOptions",
    "PrunePolicyEvaluator",
    "PrunePolicySpace",
    "PruneTask",
    "Reranked",
    "SavedModel",
    "SearchSettings",
    "SearchSetup",
    "apply_fields",
    "audit_estimates",
    "auto_bits",
    "auto_prune",
    "closest",
    "estimate_accuracy",
    "estimate_noise",
    "fill_budget",
    "finetune_model",
    "format_auto_bits",
    "format_auto_prune",
    "format_estimate_audit",
    "format_joint",
    "front_points",
    "has_batchnorm",
    "joint_search",
    "load_source",
    "load_splits",
    "measure_model_latencies",
    "parse_budget",
    "prune_sensitivity",
    "quantized_paths",
    "run_search",
    "run_task",
    "search_settings",
    "sensitivity_guide",
    "uniform_ratio_for_budget",
]
