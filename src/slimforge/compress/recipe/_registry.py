"""The registries of recipe stages: ``STAGES`` by stage name, ``QUANTIZE_MODES`` for ``quantize:MODE``."""

from __future__ import annotations

from slimforge.compress._recipe import StageSpec
from slimforge.compress._stage import Stage
from slimforge.errors import InvalidInputError
from slimforge.registry import Registry

__all__ = ["QUANTIZE_MODES", "STAGES", "build_stage"]

#: quantize modes: ``quantize:MODE[:...]`` -> stage class.
QUANTIZE_MODES: Registry[type[Stage]] = Registry("quantization mode")
QUANTIZE_MODES.register("int8", "slimforge.compress._stages_quantize:Int8Stage")
QUANTIZE_MODES.register("qat", "slimforge.compress._stages_quantize:QatStage")
QUANTIZE_MODES.register("kmeans", "slimforge.compress._stages_quantize:KMeansStage")
QUANTIZE_MODES.register("binary", "slimforge.compress._stages_quantize:LowBitStage")
QUANTIZE_MODES.register("ternary", "slimforge.compress._stages_quantize:LowBitStage")


class _QuantizeDispatch:
    """``quantize:MODE...``: the stage class of MODE in :data:`QUANTIZE_MODES`."""

    @staticmethod
    def from_spec(spec: StageSpec) -> Stage:
        if not spec.args:
            raise InvalidInputError(
                f"recipe stage {spec.text!r} needs a mode, e.g. quantize:int8 (modes: {', '.join(QUANTIZE_MODES.list())})"
            )
        return QUANTIZE_MODES.get(spec.args[0]).from_spec(spec)


#: recipe stage name -> class with ``from_spec(spec) -> Stage``.
STAGES: Registry = Registry("compression stage")
STAGES.register("prune", "slimforge.compress._stages_prune:PruneStage")
STAGES.register("sparsify", "slimforge.compress._stages_prune:SparsifyStage")
STAGES.register("lowrank", "slimforge.compress._stages_other:LowRankStage")
STAGES.register("distill", "slimforge.compress._stages_other:DistillStage")
STAGES.register("finetune", "slimforge.compress._stages_other:FinetuneStage")
STAGES.register("huffman", "slimforge.compress._stages_other:HuffmanStage")
STAGES.register("quantize", _QuantizeDispatch)


def build_stage(spec: StageSpec) -> Stage:
    """The stage ``spec`` names, validated."""
    return STAGES.get(spec.name).from_spec(spec)
