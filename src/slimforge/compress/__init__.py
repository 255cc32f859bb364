"""Model compression: pruning, quantization, low-rank, distillation, Deep-Compression coding, recipes, searches.

>>> from slimforge.compress import compress
>>> report = compress("runs/resnet20", "npz:../shared/data/cifar10_subset.npz",
...                   "prune:l1:0.5,distill:teacher=self,quantize:int8", "runs/resnet20-small",
...                   finetune_epochs=10, max_accuracy_drop=1.0)                       # doctest: +SKIP

The package is a set of sub-packages, each with its public names in ``__all__``:

- :mod:`slimforge.compress.prune`: structured pruning through torch-pruning (:func:`check_prunable`,
  ``prune_channels``, the criteria ``IMPORTANCES``, per-group policies) and unstructured masks;
- :mod:`slimforge.compress.quantize`: INT8 PTQ and QAT through ONNX Runtime
  (:func:`quantize_onnx_int8`, :func:`int8_sensitivity`), k-means weight sharing, binary / ternary
  weights, and the k-bit per-layer quantizers of mixed precision;
- :mod:`slimforge.compress.lowrank` (SVD, Tucker-2, CP), :mod:`slimforge.compress.distill`
  (:class:`DistillHook`), :mod:`slimforge.compress.coding` (Deep Compression packing and Huffman);
- :mod:`slimforge.compress.recipe`: the stages, the pipeline :func:`compress`, the measured gate
  (:class:`GateConfig`), measurement and the report;
- :mod:`slimforge.compress.auto`: the one policy-search engine behind :func:`auto_prune`,
  :func:`auto_bits` and :func:`joint_search`.

This module re-exports the top-level API only. Compressed models are saved with the model builder
``compressed`` (:func:`build_compressed`), which rebuilds them from ``model.json`` alone. The trainer
lives in :mod:`slimforge.training`; ``slimforge.compress.TrainConfig`` is a deprecated alias of
:class:`slimforge.training.TrainSettings`, kept for one release.
"""

from __future__ import annotations

import warnings
from typing import Any

from slimforge.compress._rebuild import LAYER_KINDS, build_compressed, compressed_config
from slimforge.compress.auto import (
    BITS_BUDGET_KEYS,
    BUDGET_KEYS,
    ESTIMATES,
    JOINT_BUDGET_KEYS,
    PRUNE_BUDGET_KEYS,
    AutoBitsResult,
    AutoPruneResult,
    BitsOptions,
    Budget,
    EstimateConfig,
    JointOptions,
    JointSearchResult,
    PruneOptions,
    SearchSettings,
    audit_estimates,
    auto_bits,
    auto_prune,
    format_auto_bits,
    format_auto_prune,
    format_estimate_audit,
    format_joint,
    joint_search,
    parse_budget,
)
from slimforge.compress.distill import DistillHook
from slimforge.compress.prune import check_prunable
from slimforge.compress.quantize import int8_sensitivity, quantize_onnx_int8
from slimforge.compress.recipe import (
    QUANTIZE_MODES,
    STAGES,
    CompressionReport,
    GateConfig,
    StageResult,
    compress,
    format_report,
    format_sensitivity,
    parse_stages,
)
from slimforge.training import resolve_model

__all__ = [
    "BITS_BUDGET_KEYS",
    "BUDGET_KEYS",
    "ESTIMATES",
    "JOINT_BUDGET_KEYS",
    "LAYER_KINDS",
    "PRUNE_BUDGET_KEYS",
    "QUANTIZE_MODES",
    "STAGES",
    "AutoBitsResult",
    "AutoPruneResult",
    "BitsOptions",
    "Budget",
    "CompressionReport",
    "DistillHook",
    "EstimateConfig",
    "GateConfig",
    "JointOptions",
    "JointSearchResult",
    "PruneOptions",
    "SearchSettings",
    "StageResult",
    "audit_estimates",
    "auto_bits",
    "auto_prune",
    "build_compressed",
    "check_prunable",
    "compress",
    "compressed_config",
    "format_auto_bits",
    "format_auto_prune",
    "format_estimate_audit",
    "format_joint",
    "format_report",
    "format_sensitivity",
    "int8_sensitivity",
    "joint_search",
    "parse_budget",
    "parse_stages",
    "quantize_onnx_int8",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    # A module-level __getattr__ (PEP 562) so only a use of the old name warns, not the import.
    if name == "TrainConfig":
        from slimforge.training import TrainSettings

        warnings.warn(
            "slimforge.compress.TrainConfig is deprecated; use slimforge.training.TrainSettings "
            "(it was renamed: supernet.TrainConfig is another record)",
            DeprecationWarning,
            stacklevel=2,
        )
        return TrainSettings
    raise AttributeError(f"module 'slimforge.compress' has no attribute {name!r}")

# `slimforge.compress(...)` is the public API function of that name (see slimforge.__init__).
from slimforge import _make_callable  # noqa: E402

_make_callable(__import__("sys").modules[__name__])
