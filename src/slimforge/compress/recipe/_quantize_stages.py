"""Recipe stages ``quantize:MODE``: int8 (PTQ), qat, kmeans (weight sharing), binary, ternary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slimforge.compress.recipe._spec import StageSpec
from slimforge.compress.recipe._stage import (
    Stage,
    StageContext,
    StageOutcome,
    choice_option,
    flag_option,
    int_option,
    no_more_args,
)
from slimforge.errors import InvalidInputError

__all__ = ["Int8Stage", "KMeansStage", "LowBitStage", "QatStage"]


@dataclass(frozen=True, eq=False)
class Int8Stage(Stage):
    """``quantize:int8[:method=minmax|entropy|percentile][:calib=N][:per_channel=1][:fallback=1]``.

    Post-training static INT8 through ONNX Runtime (QDQ, per-channel int8 weights, uint8
    activations), calibrated on N real training images (default: the run's calibration count).
    When the accuracy budget is exceeded, the most sensitive layers are kept in float until ONNX
    Runtime's accuracy of the file is back within budget (:func:`slimforge.compress.quantize_int8`).
    """

    method: str
    calib: int
    per_channel: bool
    fallback: bool

    name = "quantize:int8"
    final = True

    option_names = frozenset({"method", "calib", "per_channel", "fallback"})

    @classmethod
    def _parse(cls, spec: StageSpec) -> dict:
        from slimforge.compress.quantize import CALIBRATION_METHODS

        no_more_args(spec, 1)
        method = spec.option("method", "minmax")
        if method not in CALIBRATION_METHODS:
            raise InvalidInputError(
                f"recipe stage {spec.text!r}: method={method!r} is not one of {', '.join(CALIBRATION_METHODS)}"
            )
        return {
            "method": method,
            "calib": int_option(spec, "calib", 0, 1, 1_000_000),
            "per_channel": flag_option(spec, "per_channel", True),
            "fallback": flag_option(spec, "fallback", True),
        }

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        return cls(spec, **cls._parse(spec))

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.quantize import quantize_int8

        calib = ctx.calibration(self.calib or None)
        result = quantize_int8(
            ctx.model,
            ctx.input_shape,
            calib,
            ctx.splits.val,
            ctx.work_dir / "int8",
            per_channel=self.per_channel,
            method=self.method,
            accuracy_floor_pct=ctx.accuracy_floor_pct,
            fallback=self.fallback,
            seed=ctx.seed,
        )
        ctx.deployed_onnx = Path(result.path)
        top = ", ".join(f"{s.layer} (KL {s.output_kl:.2g})" for s in result.sensitivity[:3])
        notes = [f"calibrated on {len(calib)} training images ({self.method}); most sensitive layers: {top}"]
        if result.float_layers:
            notes.append(
                f"accuracy budget exceeded at full INT8: kept the {len(result.float_layers)} most sensitive "
                f"layer(s) in float ({result.attempts} attempts): {', '.join(result.float_layers)}"
            )
        return StageOutcome(notes=notes, details={"int8": result.to_dict()})


@dataclass(frozen=True, eq=False)
class QatStage(Int8Stage):
    """``quantize:qat[:epochs=E][:method=...][:calib=N][:fallback=1]``: quantization-aware training.

    The model trains E epochs (default: the finetune epochs) with fake-quantized int8 per-channel
    weights and uint8 inputs (straight-through gradients), and the result is written as an INT8 QDQ
    ONNX model by ONNX Runtime, calibrated and verified as ``quantize:int8``.
    """

    epochs: int

    name = "quantize:qat"
    option_names = Int8Stage.option_names | {"epochs"}

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        return cls(spec, **cls._parse(spec), epochs=int_option(spec, "epochs", -1, 0, 10_000))

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.quantize import from_qat, to_qat

        swapped = to_qat(ctx.model)
        try:
            ctx.train(None if self.epochs < 0 else self.epochs, desc="QAT")
        finally:
            from_qat(ctx.model)
        outcome = super()._apply(ctx)
        outcome.notes.insert(
            0, f"QAT: {len(swapped)} layer(s) trained with fake-quantized INT8 weights and inputs"
        )
        return outcome


@dataclass(frozen=True, eq=False)
class KMeansStage(Stage):
    """``quantize:kmeans:BITS``: weight sharing with 2**BITS k-means centroids per layer, then finetuning
    the centroids (Han et al., 2016). Zeros from earlier pruning stay zero."""

    bits: int

    name = "quantize:kmeans"
    constrains_weights = True

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        if len(spec.args) < 2:
            raise InvalidInputError(
                f"recipe stage {spec.text!r} needs the bits, e.g. quantize:kmeans:4 (2 to 8)"
            )
        no_more_args(spec, 2)
        try:
            bits = int(spec.args[1])
        except ValueError:
            raise InvalidInputError(
                f"recipe stage {spec.text!r}: bits {spec.args[1]!r} is not an integer"
            ) from None
        if not 2 <= bits <= 8:
            raise InvalidInputError(f"recipe stage {spec.text!r}: bits {bits} must be between 2 and 8")
        return cls(spec, bits=bits)

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.quantize import SharedWeightHook, share_weights

        hook = SharedWeightHook(share_weights(ctx.model, self.bits))
        ctx.train(hooks=[hook], desc="finetune centroids")
        ctx.persistent_hooks.append(hook)
        return StageOutcome(
            notes=[f"{2**self.bits} shared values per layer (k-means, linear init), centroids finetuned"]
        )


@dataclass(frozen=True, eq=False)
class LowBitStage(Stage):
    """``quantize:binary[:scale=1][:float_layers=first_last|none]`` or ``quantize:ternary[:...]``.

    Training modes with binary (BinaryConnect; BWN with ``scale=1``) or ternary (TWN) weights and a
    straight-through estimator, for the finetune epochs. ONNX Runtime has no binary kernels, so the
    exported model is float with 2 or 3 distinct values per layer/channel: the saving is in the
    packed bytes, not in latency.
    """

    mode: str
    scale: bool
    keep_first_last: bool

    name = "quantize:lowbit"
    constrains_weights = True

    option_names = frozenset({"scale", "float_layers"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        no_more_args(spec, 1)
        keep = choice_option(spec, "float_layers", "first_last", ("first_last", "none"))
        return cls(
            spec,
            mode=spec.args[0],
            scale=flag_option(spec, "scale", True),
            keep_first_last=keep == "first_last",
        )

    @property
    def kind(self) -> str:
        return f"quantize:{self.mode}"

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.quantize import LowBitHook

        hook = LowBitHook(self.mode, scale=self.scale, exclude=None if self.keep_first_last else [])
        ctx.train(hooks=[hook], desc=self.mode)
        ctx.persistent_hooks.append(hook)
        hook.apply(ctx.model)
        kind = (
            "BWN"
            if self.mode == "binary" and self.scale
            else "BinaryConnect"
            if self.mode == "binary"
            else "TWN"
        )
        floats = ", ".join(hook.exclude) or "none"
        return StageOutcome(
            notes=[
                (
                    f"{kind} weights; float layers: {floats}; ONNX Runtime runs them as float (no binary kernels): "
                    "the saving is in packed bytes"
                )
            ]
        )
