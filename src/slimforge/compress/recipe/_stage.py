"""The stage protocol of a compression recipe: a parsed stage applied to the working model.

A :class:`Stage` is built from its recipe text (``from_spec`` validates every field, so a bad
recipe fails before any work) and applied to a :class:`StageContext`, the pipeline's working
state: the current model, the data, the finetuning settings and what earlier stages left for
later ones (sparsity masks, shared-weight groups, a teacher).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from slimforge.compress.recipe._spec import StageSpec
from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.training import TrainHook, TrainRuntime, TrainSettings, train_classifier

__all__ = [
    "Stage",
    "StageContext",
    "StageOutcome",
    "choice_option",
    "flag_option",
    "float_option",
    "int_option",
    "no_more_args",
    "ratio_arg",
    "registry_arg",
]


def ratio_arg(spec: StageSpec, position: int, what: str) -> float:
    """Positional field ``position`` of ``spec`` as a ratio strictly between 0 and 1."""
    if len(spec.args) <= position:
        raise InvalidInputError(
            f"recipe stage {spec.text!r} needs a {what} (a number strictly between 0 and 1)"
        )
    text = spec.args[position]
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"recipe stage {spec.text!r}: {what} {text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise InvalidInputError(
            f"recipe stage {spec.text!r}: {what} {text} is outside (0, 1); e.g. 0.5 removes half"
        )
    return value


def registry_arg(spec: StageSpec, registry: Registry[Any], needs: str) -> Any:
    """The entry of ``registry`` that the first positional field of ``spec`` names.

    Args:
        needs: what the stage needs, for the error when the field is missing (``{names}``: the
            registry's names).
    """
    if not spec.args:
        names = ", ".join(registry.list())
        raise InvalidInputError(f"recipe stage {spec.text!r} needs {needs.format(names=names)}")
    return registry.get(spec.args[0])  # an unknown name raises with close names


def no_more_args(spec: StageSpec, count: int) -> None:
    """Raise if ``spec`` has more than ``count`` positional fields."""
    if len(spec.args) > count:
        raise InvalidInputError(f"recipe stage {spec.text!r}: unexpected field {spec.args[count]!r}")


def flag_option(spec: StageSpec, key: str, default: bool) -> bool:
    """Option ``key`` of ``spec`` as a boolean written 1/0 (or true/false, yes/no, on/off)."""
    text = spec.option(key)
    if text is None:
        return default
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidInputError(f"recipe stage {spec.text!r}: {key}={text!r} must be 1 or 0")


def choice_option(spec: StageSpec, key: str, default: str, choices: Sequence[str]) -> str:
    """Option ``key`` of ``spec``, one of ``choices``."""
    value = spec.option(key, default)
    if value not in choices:
        raise InvalidInputError(f"recipe stage {spec.text!r}: {key}={value!r} must be {' or '.join(choices)}")
    return value


def _number_option(spec: StageSpec, key: str, parse: type, noun: str) -> Any:
    """Option ``key`` of ``spec`` parsed by ``parse`` (``float``, ``int``); None when absent."""
    text = spec.option(key)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        raise InvalidInputError(f"recipe stage {spec.text!r}: {key}={text!r} is not {noun}") from None


def float_option(
    spec: StageSpec, key: str, default: float, low: float, high: float, *, open_low: bool = False
) -> float:
    """Option ``key`` of ``spec`` as a float in [low, high] (or (low, high] with ``open_low``)."""
    value = _number_option(spec, key, float, "a number")
    if value is None:
        return default
    if not (low < value if open_low else low <= value) or not value <= high:
        bracket = "(" if open_low else "["
        raise InvalidInputError(
            f"recipe stage {spec.text!r}: {key}={spec.option(key)} must be in {bracket}{low}, {high}]"
        )
    return value


def int_option(spec: StageSpec, key: str, default: int, low: int, high: int) -> int:
    """Option ``key`` of ``spec`` as an int in [low, high]."""
    value = _number_option(spec, key, int, "an integer")
    if value is None:
        return default
    if not low <= value <= high:
        raise InvalidInputError(f"recipe stage {spec.text!r}: {key}={value} must be between {low} and {high}")
    return value


@dataclass(eq=False)
class StageContext:
    """The pipeline's working state, handed from stage to stage.

    Args:
        model: the current model (stages change it in place).
        original: the model compression started from (never changed; the default teacher).
        original_config: the config that rebuilds ``original``.
        input_shape: the input, batch 1 included.
        splits: the data (:class:`slimforge.data.DatasetSplits`).
        finetune: settings of every finetuning run (its ``epochs`` is the recipe's finetune epochs).
        work_dir: a directory stages may write to (the stage's ONNX files).
        seed: seeds calibration draws and random criteria.
        calibration_images: how many real training images calibrate INT8.
        accuracy_floor_pct: the lowest validation accuracy the budget allows (None: no budget).
        progress: show progress bars.
        gate: the measured gate, for stages that choose their form by timing it (pruning's rounding).
        runtime: where and how finetuning runs (:class:`slimforge.training.TrainRuntime`; None: the CPU).
    """

    model: nn.Module
    original: nn.Module
    original_config: dict[str, Any]
    input_shape: tuple[int, ...]
    splits: Any
    finetune: TrainSettings
    work_dir: Path
    seed: int = 0
    calibration_images: int = 128
    accuracy_floor_pct: float | None = None
    progress: bool = False
    runtime: TrainRuntime | None = None
    #: hooks every later finetune keeps (masks of pruned weights, shared-weight groups).
    persistent_hooks: list[TrainHook] = field(default_factory=list)
    #: the teacher of later finetunes, once a distill stage has named one.
    teacher_hooks: list[TrainHook] = field(default_factory=list)
    #: set by a stage whose deployable result is an ONNX file rather than the PyTorch model (INT8).
    deployed_onnx: Path | None = None
    #: whether the packed weights are Huffman-coded (set by the ``huffman`` stage).
    huffman: bool = False
    #: times models on the target runtime (:class:`slimforge.compress.recipe._gate.Gatekeeper`); None: no gate.
    gate: Any = None

    def train(
        self,
        epochs: int | None = None,
        hooks: Sequence[TrainHook] = (),
        desc: str = "finetune",
        lr_scale: float = 1.0,
    ) -> None:
        """Finetune the current model with the recipe's settings (learning rate times ``lr_scale``)
        plus every hook in force."""
        config = self.finetune if epochs is None else replace(self.finetune, epochs=epochs)
        if lr_scale != 1.0:
            config = replace(config, lr=config.lr * lr_scale)
        if config.epochs == 0:
            return
        train_classifier(
            self.model,
            self.splits.train,
            config,
            hooks=[*self.persistent_hooks, *self.teacher_hooks, *hooks],
            progress=self.progress,
            desc=desc,
            runtime=self.runtime,
        )

    def calibration(self, n: int | None = None) -> torch.Tensor:
        """``n`` (default ``calibration_images``) normalised real training images."""
        from slimforge.data import calibration_batch

        n = min(n or self.calibration_images, len(self.splits.train))
        return calibration_batch(self.splits.train, n, seed=self.seed)

    def labelled(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` normalised training images with their labels."""
        from slimforge.data import sample_batch

        return sample_batch(self.splits.train, min(n, len(self.splits.train)), seed=self.seed + 1)


@dataclass
class StageOutcome:
    """What a stage reports besides the model it changed: notes for people, numbers for the JSON."""

    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Stage(ABC):
    """One step of a recipe: its parsed settings (a frozen dataclass) and the work it does.

    Subclasses set ``name``, add their settings as fields, and implement ``_from_spec`` (parse and
    validate the recipe text into those fields) and ``_apply``. ``final`` stages produce the
    deployable file themselves (INT8 ONNX) and must come last (only accounting stages may follow).
    """

    spec: StageSpec

    name: ClassVar[str]
    final: ClassVar[bool] = False
    #: stages that only change the accounting of the model (may follow a final stage).
    accounting_only: ClassVar[bool] = False
    #: stages that change layer shapes or replace layers (pruning, low-rank, BN folding).
    changes_structure: ClassVar[bool] = False
    #: stages whose weight constraints later finetunes keep (masks, shared values, binary weights).
    constrains_weights: ClassVar[bool] = False
    #: the ``key=value`` option names the stage takes.
    option_names: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_spec(cls, spec: StageSpec) -> Stage:
        """Build the stage from its recipe text, validating every field."""
        known = cls.known_options()
        for key, _ in spec.options:
            if not key.startswith("@") and key not in known:
                raise InvalidInputError(
                    f"recipe stage {spec.text!r}: unknown option {key!r}"
                    + (f"; known: {', '.join(sorted(known))}" if known else "; this stage takes no options")
                )
        return cls._from_spec(spec)

    @classmethod
    def known_options(cls) -> set[str]:
        """The ``key=value`` option names the stage takes (:attr:`option_names`)."""
        return set(cls.option_names)

    @classmethod
    @abstractmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        """Hook: parse and validate ``spec`` into a stage."""

    def apply(self, ctx: StageContext) -> StageOutcome:
        """Apply the stage to ``ctx.model`` (in place)."""
        if ctx.deployed_onnx is not None and not self.accounting_only:
            raise InvalidInputError(
                f"recipe stage {self.spec.text!r} comes after a stage that produced the final INT8 model; "
                "put quantize:int8 / quantize:qat last"
            )
        return self._apply(ctx)

    @abstractmethod
    def _apply(self, ctx: StageContext) -> StageOutcome:
        """Hook: do the work."""

    @property
    def kind(self) -> str:
        """The stage's kind as shown in file names (``prune``, ``quantize:int8``, ...)."""
        return self.name

    @property
    def text(self) -> str:
        """The stage as written in the recipe."""
        return self.spec.text
