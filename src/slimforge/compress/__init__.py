"""Model compression: pruning, quantization, low-rank, distillation, Deep-Compression accounting, recipes.

>>> from slimforge.compress import compress
>>> report = compress("runs/resnet20", "npz:../shared/data/cifar10_subset.npz",
...                   "prune:l1:0.5,distill:teacher=self,quantize:int8", "runs/resnet20-small",
...                   finetune_epochs=10, max_accuracy_drop=1.0)

Each recipe stage is an entry of :data:`STAGES` (``prune``, ``sparsify``, ``lowrank``, ``distill``,
``finetune``, ``quantize``, ``huffman``); ``quantize`` modes are in :data:`QUANTIZE_MODES`, pruning
criteria in :data:`IMPORTANCES`, low-rank methods in :data:`LOWRANK_METHODS`. Every method is also
a plain function or training hook: :func:`prune_channels` (with :func:`check_prunable`),
:func:`magnitude_masks` + :class:`MaskHook`, :func:`quantize_int8` (PTQ with verification and
fallback) and :func:`quantize_onnx_int8`, :func:`to_qat`, :func:`share_weights` +
:class:`SharedWeightHook`, :class:`LowBitHook`, :func:`factorise`, :class:`DistillHook`,
:func:`pack_state` (Deep Compression bytes), :func:`train_classifier`.

Compressed models are saved with the model builder ``compressed`` (:func:`build_compressed`),
which rebuilds them from ``model.json`` alone.
"""

from __future__ import annotations

from slimforge.compress._auto_bits import (
    BIT_QUANTIZERS,
    AutoBitsResult,
    BitSensitivity,
    MixedBitHook,
    auto_bits,
    bit_sensitivity,
    mixed_precision_bytes,
    quantizable_layers,
    quantize_weights,
)
from slimforge.compress._auto_common import AutoRow, EstimateConfig, PolicyPoint
from slimforge.compress._auto_prune import AutoPruneResult, apply_prune_policy, auto_prune
from slimforge.compress._baseline import BaselineResult, train_baseline
from slimforge.compress._binary import LowBitHook, binarize, ternarize
from slimforge.compress._budget import BUDGET_KEYS, Budget, parse_budget
from slimforge.compress._coding import (
    has_packable_weights,
    huffman_code_lengths,
    pack_state,
    packed_size,
    unpack_state,
)
from slimforge.compress._distill import DistillHook, attention_map
from slimforge.compress._gate import GATE_OBJECTIVES, GateConfig, GateVerdict
from slimforge.compress._int8 import (
    Int8Result,
    LayerSensitivity,
    check_calibration,
    int8_sensitivity,
    quantize_int8,
    quantize_onnx_int8,
)
from slimforge.compress._joint import JointSearchResult, JointSpace, joint_search
from slimforge.compress._kmeans import SharedWeightHook, kmeans_1d, share_weights
from slimforge.compress._lowrank import LOWRANK_METHODS, LayerFactorisation, factorise
from slimforge.compress._measure import StageResult
from slimforge.compress._onnx_compact import compact_onnx
from slimforge.compress._pipeline import CompressionReport, compress, parse_stages
from slimforge.compress._policy_space import BitPolicySpace, PrunePolicySpace
from slimforge.compress._qat import from_qat, to_qat
from slimforge.compress._recipe import StageSpec, parse_recipe
from slimforge.compress._sparse import MaskHook, magnitude_masks, sparsity
from slimforge.compress._stage import Stage, StageContext, StageOutcome
from slimforge.compress._stages import QUANTIZE_MODES, STAGES
from slimforge.compress._structure import LAYER_KINDS, build_compressed, compressed_config
from slimforge.compress._structured import (
    IMPORTANCES,
    NotTraceableError,
    PruneCheck,
    PruneResult,
    SkippedLayer,
    SlimmingHook,
    check_prunable,
    prune_channels,
)
from slimforge.compress._train import (
    TrainConfig,
    TrainHook,
    TrainResult,
    accuracy,
    onnx_accuracy,
    train_classifier,
)


__all__ = [
    "BIT_QUANTIZERS",
    "BUDGET_KEYS",
    "IMPORTANCES",
    "LAYER_KINDS",
    "LOWRANK_METHODS",
    "QUANTIZE_MODES",
    "STAGES",
    "AutoBitsResult",
    "AutoPruneResult",
    "AutoRow",
    "BaselineResult",
    "BitPolicySpace",
    "BitSensitivity",
    "Budget",
    "CompressionReport",
    "DistillHook",
    "EstimateConfig",
    "GATE_OBJECTIVES",
    "GateConfig",
    "GateVerdict",
    "Int8Result",
    "JointSearchResult",
    "JointSpace",
    "LayerFactorisation",
    "LayerSensitivity",
    "LowBitHook",
    "MaskHook",
    "MixedBitHook",
    "NotTraceableError",
    "PolicyPoint",
    "PruneCheck",
    "PrunePolicySpace",
    "PruneResult",
    "SharedWeightHook",
    "SkippedLayer",
    "SlimmingHook",
    "Stage",
    "StageContext",
    "StageOutcome",
    "StageResult",
    "StageSpec",
    "TrainConfig",
    "TrainHook",
    "TrainResult",
    "accuracy",
    "apply_prune_policy",
    "attention_map",
    "auto_bits",
    "auto_prune",
    "binarize",
    "bit_sensitivity",
    "build_compressed",
    "check_calibration",
    "check_prunable",
    "compact_onnx",
    "compress",
    "compressed_config",
    "factorise",
    "from_qat",
    "has_packable_weights",
    "huffman_code_lengths",
    "int8_sensitivity",
    "joint_search",
    "kmeans_1d",
    "magnitude_masks",
    "mixed_precision_bytes",
    "onnx_accuracy",
    "pack_state",
    "packed_size",
    "parse_budget",
    "parse_recipe",
    "parse_stages",
    "prune_channels",
    "quantizable_layers",
    "quantize_int8",
    "quantize_onnx_int8",
    "quantize_weights",
    "share_weights",
    "sparsity",
    "ternarize",
    "to_qat",
    "train_baseline",
    "train_classifier",
    "unpack_state",
]
