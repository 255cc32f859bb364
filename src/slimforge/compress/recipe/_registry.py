"""The registries of recipe stages: ``STAGES`` by stage name, ``QUANTIZE_MODES`` for ``quantize:MODE``."""

from __future__ import annotations

from slimforge.compress.recipe._spec import StageSpec
from slimforge.compress.recipe._stage import Stage, registry_arg
from slimforge.registry import Registry

__all__ = ["QUANTIZE_MODES", "STAGES", "build_stage"]

#: quantize modes: ``quantize:MODE[:...]`` -> stage class.
QUANTIZE_MODES: Registry[type[Stage]] = Registry("quantization mode")
QUANTIZE_MODES.register("int8", "slimforge.compress.recipe._quantize_stages:Int8Stage")
QUANTIZE_MODES.register("qat", "slimforge.compress.recipe._quantize_stages:QatStage")
QUANTIZE_MODES.register("kmeans", "slimforge.compress.recipe._quantize_stages:KMeansStage")
QUANTIZE_MODES.register("binary", "slimforge.compress.recipe._quantize_stages:LowBitStage")
QUANTIZE_MODES.register("ternary", "slimforge.compress.recipe._quantize_stages:LowBitStage")


class _QuantizeDispatch:
    """``quantize:MODE...``: the stage class of MODE in :data:`QUANTIZE_MODES`."""

    @staticmethod
    def from_spec(spec: StageSpec) -> Stage:
        stage = registry_arg(spec, QUANTIZE_MODES, "a mode, e.g. quantize:int8 (modes: {names})")
        return stage.from_spec(spec)


#: recipe stage name -> class with ``from_spec(spec) -> Stage``.
STAGES: Registry = Registry("compression stage")
STAGES.register("prune", "slimforge.compress.recipe._prune_stages:PruneStage")
STAGES.register("sparsify", "slimforge.compress.recipe._prune_stages:SparsifyStage")
STAGES.register("lowrank", "slimforge.compress.recipe._other_stages:LowRankStage")
STAGES.register("distill", "slimforge.compress.recipe._other_stages:DistillStage")
STAGES.register("finetune", "slimforge.compress.recipe._other_stages:FinetuneStage")
STAGES.register("huffman", "slimforge.compress.recipe._other_stages:HuffmanStage")
STAGES.register("quantize", _QuantizeDispatch)


def build_stage(spec: StageSpec) -> Stage:
    """The stage ``spec`` names, validated."""
    return STAGES.get(spec.name).from_spec(spec)
