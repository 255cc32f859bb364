"""The settings of one supernet training run, as a frozen dataclass that round-trips through JSON.

The optimiser defaults are the co-design study's (REFERENCE.md, Table 5-1): batch 64; SGD with lr
0.025 decayed to 0 by a cosine, momentum 0.9 (Nesterov), weight decay 5e-4; architecture parameters
by Adam with lr 3e-4 (also cosine-decayed to 0) and weight decay 1e-3. Gradients are clipped to norm
5, as in the NAS-Bench-201 baselines. The supernet defaults are what made a NAS-Bench-201 supernet
rank architectures the right way round at CPU scale (BENCHMARKS, issue 16): a few-shot supernet
(``method="fewshot"``: split on one gene, convolution warm-up) with affine-free batch norm in the
choices (``bn_affine=False``), as NAS-Bench-201's own weight-sharing baselines.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.supernet.bn import BN_MODES

__all__ = ["LR_SCHEDULES", "TrainConfig"]

#: the learning-rate schedules of the weights (``TrainConfig.lr_schedule``).
LR_SCHEDULES = ("cosine", "linear")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")


def _json_ready(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(f"{name} must be a dict with string keys, got {value!r}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{name} {value!r} must hold only JSON values (numbers, strings, lists)"
        ) from None


@dataclass(frozen=True)
class TrainConfig:
    """What a supernet training run is: space, method, data, hyper-parameters and seed.

    Attributes:
        data: data spec (``npz:FILE``, ``cifar10:DIR``, ``digits``, ...).
        epochs: passes over the training images.
        space: registry name of the search space; ``space_kwargs`` go to its constructor.
        method: registry name of the trainer (``slimforge.supernet.TRAINERS``); ``method_options``
            are that trainer's options (e.g. ``{"order": 2}`` for DARTS).
        batch_size: images per step.
        lr, momentum, nesterov, weight_decay: the SGD optimiser of the weights.
        lr_schedule: how the weights' learning rate falls to 0 over the run, per step: ``cosine``
            (the co-design study, Table 5-1) or ``linear``, ``lr * (1 - step / total)`` (the
            ``LambdaLR`` of SPOS's code, which the study's device experiment trained with).
        arch_lr, arch_weight_decay: the Adam optimiser of the architecture parameters (DARTS, GDAS).
        grad_clip: gradient-norm clip of the weights; 0 turns it off.
        bn_affine: whether the batch-norm layers inside the searchable choices learn a scale and a
            shift; False fixes them at 1 and 0 (affine-free, as NAS-Bench-201's weight-sharing baselines).
        eval_bn: how batch norm normalises when this supernet's sub-networks are scored
            (:data:`slimforge.supernet.bn.BN_MODES`): ``recalibrate`` (running statistics
            recomputed per sub-network) or ``batch`` (each evaluation batch's own statistics).
        val_fraction: share of the training images held out as validation (for the architecture
            steps of DARTS/GDAS and the search of RSPS; the other methods train on all of them).
        hold_out_val: keep the validation images out of weight training for every method, so that
            inherited-weight accuracy on them is measured on unseen images (``slimforge run`` does).
        seed: seeds weight initialisation, path sampling, data order and augmentation.
    """

    data: str
    epochs: int
    space: str = "nb201"
    space_kwargs: dict[str, Any] = field(default_factory=dict)
    method: str = "fewshot"
    method_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    lr: float = 0.025
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    bn_affine: bool = False
    eval_bn: str = "recalibrate"
    val_fraction: float = 0.1
    hold_out_val: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("data", "space", "method"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidInputError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        for name in ("lr", "momentum", "weight_decay", "arch_lr", "arch_weight_decay", "grad_clip"):
            _non_negative(name, getattr(self, name))
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidInputError(
                f"lr_schedule {self.lr_schedule!r} must be one of {', '.join(LR_SCHEDULES)}"
            )
        if self.eval_bn not in BN_MODES:
            raise InvalidInputError(f"eval_bn {self.eval_bn!r} must be one of {', '.join(BN_MODES)}")
        if not isinstance(self.bn_affine, bool):
            raise InvalidInputError(f"bn_affine must be True or False, got {self.bn_affine!r}")
        if not isinstance(self.hold_out_val, bool):
            raise InvalidInputError(f"hold_out_val must be True or False, got {self.hold_out_val!r}")
        if not isinstance(self.nesterov, bool):
            raise InvalidInputError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise InvalidInputError(
                "Nesterov momentum needs momentum > 0; set nesterov=False or momentum=0.9"
            )
        _non_negative("val_fraction", self.val_fraction)
        if not 0 < self.val_fraction < 1:
            raise InvalidInputError(
                f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "space_kwargs", _json_ready("space_kwargs", self.space_kwargs))
        object.__setattr__(self, "method_options", _json_ready("method_options", self.method_options))
        for name in (
            "lr",
            "momentum",
            "weight_decay",
            "arch_lr",
            "arch_weight_decay",
            "grad_clip",
            "val_fraction",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise InvalidInputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown training setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    def differences(self, other: TrainConfig) -> list[str]:
        """``"name: mine vs other"`` for every setting that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} vs {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]
