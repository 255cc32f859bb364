"""Recipe stages ``distill``, ``finetune``, ``lowrank`` and ``huffman``."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from slimforge.compress.recipe._spec import StageSpec
from slimforge.compress.recipe._stage import (
    Stage,
    StageContext,
    StageOutcome,
    flag_option,
    float_option,
    int_option,
    no_more_args,
    registry_arg,
)
from slimforge.errors import InvalidInputError

__all__ = ["DistillStage", "FinetuneStage", "HuffmanStage", "LowRankStage"]


@dataclass(frozen=True, eq=False)
class DistillStage(Stage):
    """``distill[:teacher=T][:T=4][:alpha=0.9][:hint=L1+L2][:at=L1+L2][:epochs=E]``: knowledge distillation.

    The teacher is ``self`` (default: the model compression started from), a saved model directory,
    or the zoo name of the model compression started from. The model is finetuned with the teacher
    for E epochs (default: the finetune epochs), and every later finetune keeps the teacher.
    """

    teacher: str
    temperature: float
    alpha: float
    hints: tuple[str, ...]
    attention: tuple[str, ...]
    epochs: int

    name = "distill"

    option_names = frozenset({"teacher", "T", "alpha", "hint", "at", "epochs"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        no_more_args(spec, 0)
        return cls(
            spec,
            teacher=spec.option("teacher", "self"),
            temperature=float_option(spec, "T", 4.0, 0.0, 100.0, open_low=True),
            alpha=float_option(spec, "alpha", 0.9, 0.0, 1.0),
            hints=tuple(p for p in (spec.option("hint") or "").split("+") if p),
            attention=tuple(p for p in (spec.option("at") or "").split("+") if p),
            epochs=int_option(spec, "epochs", -1, 0, 10_000),
        )

    def _teacher(self, ctx: StageContext) -> nn.Module:
        from slimforge.io import load_model

        if self.teacher in ("self", "original"):
            return copy.deepcopy(ctx.original)
        path = Path(self.teacher)
        if path.is_dir() or path.name == "model.json":
            return load_model(path)
        config = ctx.original_config
        base = config.get("base", config) if config.get("builder") == "compressed" else config
        if base.get("name") == self.teacher:
            return copy.deepcopy(ctx.original)
        raise InvalidInputError(
            f"teacher {self.teacher!r} is neither 'self', a saved model directory, nor the model being compressed "
            f"({base.get('name')!r}); train it first (slimforge compress {self.teacher} --train --out DIR) "
            "and pass teacher=DIR"
        )

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.distill import DistillHook

        hook = DistillHook(
            self._teacher(ctx),
            temperature=self.temperature,
            alpha=self.alpha,
            hints=self.hints,
            attention=self.attention,
            input_shape=ctx.input_shape,
        )
        ctx.teacher_hooks = [hook]
        ctx.train(None if self.epochs < 0 else self.epochs, desc="distill")
        parts = [f"soft targets T={self.temperature:g} alpha={self.alpha:g}"]
        if self.hints:
            parts.append("hints at " + ", ".join(self.hints))
        if self.attention:
            parts.append("attention transfer at " + ", ".join(self.attention))
        return StageOutcome(notes=["distilled from " + self.teacher + ": " + "; ".join(parts)])


@dataclass(frozen=True, eq=False)
class FinetuneStage(Stage):
    """``finetune[:epochs=E]``: train the current model (with any teacher and masks in force)."""

    epochs: int

    name = "finetune"

    option_names = frozenset({"epochs"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        no_more_args(spec, 0)
        return cls(spec, epochs=int_option(spec, "epochs", -1, 0, 10_000))

    def _apply(self, ctx: StageContext) -> StageOutcome:
        ctx.train(None if self.epochs < 0 else self.epochs)
        return StageOutcome()


@dataclass(frozen=True, eq=False)
class LowRankStage(Stage):
    """``lowrank:svd|tucker|cp[:energy=E | :ratio=R][:first=0][:lr_scale=S]``: low-rank factorisation,
    then finetuning.

    ``svd`` splits linear (and 1x1 conv) layers, ``tucker`` (Tucker-2) and ``cp`` the kxk convs.
    Ranks keep the energy E (default 0.9) or the parameter ratio R per layer. The first conv
    (3 input channels: nothing to gain) is left alone unless ``first=1``. The finetune runs at
    ``lr_scale`` times the recipe's learning rate (default: the method's, 0.2 for ``cp``, else 1) when
    a layer was factorised.
    """

    method: str
    energy: float | None
    ratio: float | None
    first: bool
    lr_scale: float

    name = "lowrank"
    changes_structure = True

    option_names = frozenset({"energy", "ratio", "first", "lr_scale"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        from slimforge.compress.lowrank import FINETUNE_LR_SCALE, LOWRANK_METHODS

        registry_arg(spec, LOWRANK_METHODS, "a method: {names}, e.g. lowrank:tucker")
        no_more_args(spec, 1)
        if spec.option("energy") is not None and spec.option("ratio") is not None:
            raise InvalidInputError(f"recipe stage {spec.text!r}: give energy= or ratio=, not both")
        ratio = None
        if spec.option("ratio") is not None:
            ratio = float_option(spec, "ratio", 0.5, 0.0, 1.0, open_low=True)
            if ratio >= 1:
                raise InvalidInputError(f"recipe stage {spec.text!r}: ratio must be strictly between 0 and 1")
        energy = None if ratio is not None else float_option(spec, "energy", 0.9, 0.0, 1.0, open_low=True)
        method = spec.args[0]
        default_scale = FINETUNE_LR_SCALE.get(method, 1.0)
        lr_scale = float_option(spec, "lr_scale", default_scale, 0.0, 10.0, open_low=True)
        return cls(
            spec,
            method=method,
            energy=energy,
            ratio=ratio,
            first=flag_option(spec, "first", False),
            lr_scale=lr_scale,
        )

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.lowrank import factorise
        from slimforge.compress.prune import prunable_weights

        exclude = [] if self.first else list(prunable_weights(ctx.model))[:1]
        done = factorise(
            ctx.model, self.method, energy=self.energy, ratio=self.ratio, exclude=exclude, seed=ctx.seed
        )
        lr_scale = self.lr_scale if done else 1.0  # nothing factorised: an ordinary finetune
        ctx.train(desc="finetune", lr_scale=lr_scale)
        before, after = sum(d.params_before for d in done), sum(d.params_after for d in done)
        rule = f"energy {self.energy:g}" if self.energy is not None else f"ratio {self.ratio:g}"
        notes = [f"{len(done)} layer(s) factorised ({rule}): {before:,} -> {after:,} parameters"]
        if lr_scale != 1.0:
            notes.append(f"finetuned at {self.lr_scale:g}x the recipe's learning rate")
        return StageOutcome(
            notes=notes,
            details={"layers": [d.to_dict() for d in done]},
        )


@dataclass(frozen=True, eq=False)
class HuffmanStage(Stage):
    """``huffman``: Huffman-code the packed weights' index streams (Deep Compression's last stage).

    Changes no weights; the packed bytes of this row are the P+Q+C figure.
    """

    name = "huffman"
    accounting_only = True

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        no_more_args(spec, 0)
        return cls(spec)

    def _apply(self, ctx: StageContext) -> StageOutcome:
        ctx.huffman = True
        return StageOutcome(notes=["sparse-index and codebook-index streams Huffman-coded"])
