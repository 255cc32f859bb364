"""Compression recipes: stages run in order, each measured, each checked by a measured gate.

>>> from slimforge.compress.recipe import compress
>>> report = compress("runs/resnet20", "npz:../shared/data/cifar10_subset.npz",
...                   "prune:l1:0.5,distill:teacher=self,quantize:int8", "runs/resnet20-small")  # doctest: +SKIP

A recipe is stages separated by commas (:func:`parse_recipe` splits it, :func:`parse_stages`
validates it). Each stage is an entry of :data:`STAGES` (``prune``, ``sparsify``, ``lowrank``,
``distill``, ``finetune``, ``quantize``, ``huffman``; ``quantize`` modes are in
:data:`QUANTIZE_MODES`): a :class:`Stage` whose public ``apply`` checks the context and calls its
``_apply`` hook on the :class:`StageContext`. After every stage the model is exported and
measured (:class:`StageResult`); a stage that makes the exported graph slower on the target
device is dropped (:class:`GateConfig`). :func:`format_report` is the table ``compression.txt``
holds, :func:`format_sensitivity` the INT8 sensitivity table.
"""

from __future__ import annotations

from slimforge.compress.recipe._gate import GATE_OBJECTIVES, GateConfig, Gatekeeper, GateVerdict
from slimforge.compress.recipe._measure import StageResult
from slimforge.compress.recipe._onnx_compact import compact_onnx
from slimforge.compress.recipe._pipeline import CompressionReport, compress, parse_stages
from slimforge.compress.recipe._registry import QUANTIZE_MODES, STAGES, build_stage
from slimforge.compress.recipe._report import format_report, format_sensitivity
from slimforge.compress.recipe._spec import StageSpec, parse_recipe
from slimforge.compress.recipe._stage import Stage, StageContext, StageOutcome

__all__ = [
    "GATE_OBJECTIVES",
    "QUANTIZE_MODES",
    "STAGES",
    "CompressionReport",
    "GateConfig",
    "GateVerdict",
    "Gatekeeper",
    "Stage",
    "StageContext",
    "StageOutcome",
    "StageResult",
    "StageSpec",
    "build_stage",
    "compact_onnx",
    "compress",
    "format_report",
    "format_sensitivity",
    "parse_recipe",
    "parse_stages",
]
