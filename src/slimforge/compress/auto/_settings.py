"""The settings every policy search shares: how it searches, how it scores a candidate, how it finetunes.

A search takes two small frozen records, :class:`SearchSettings` (shared by prune, bits and joint)
and the kind's own options (e.g. :class:`~slimforge.compress.auto.PruneOptions`). The public
functions also accept any field of either as a keyword (``auto_prune(..., seed=1, criterion="l2")``);
:func:`apply_fields` routes each keyword to the record that has it and refuses the others.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = ["EstimateConfig", "SearchSettings", "apply_fields", "check_count"]

R = TypeVar("R")


def check_count(name: str, value: object, lowest: int) -> int:
    """``value`` as an int >= ``lowest``, or a one-line error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"{name} must be an integer >= {lowest}, got {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class EstimateConfig(JsonRecord):
    """How a candidate policy's accuracy is estimated during a search.

    Args:
        recal_images: training images that re-calibrate batch-norm statistics (0: off).
        val_images: validation images the accuracy is measured on (0: the whole validation split).
        finetune_steps: SGD steps on training batches before re-calibration (0: none).
        finetune_lr: learning rate of those steps.
        batch_size: batch size of those steps and of re-calibration.
    """

    recal_images: int = 256
    val_images: int = 0
    finetune_steps: int = 0
    finetune_lr: float = 0.01
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("recal_images", "val_images", "finetune_steps"):
            check_count(name, getattr(self, name), 0)
        check_count("batch_size", self.batch_size, 1)
        _positive("finetune_lr", self.finetune_lr)

    def describe(self, what: str, num_val: int, bn: bool = True) -> str:
        """The estimate in one sentence, for reports."""
        steps = f" + {self.finetune_steps} SGD steps (lr {self.finetune_lr:g})" if self.finetune_steps else ""
        recal = (
            f" + BN re-calibration on {self.recal_images} training images"
            if self.recal_images and bn
            else " (no BN re-calibration: the model has no BatchNorm)"
            if self.recal_images
            else ""
        )
        return f"top-1 accuracy on {num_val} validation images after {what}{steps}{recal}"


@dataclass(frozen=True)
class SearchSettings(JsonRecord):
    """How a policy search runs, shared by the prune, bits and joint searches.

    Args:
        search_budget: distinct policies evaluated.
        algorithm: a name from :data:`slimforge.search.ALGORITHMS`.
        algorithm_settings: overrides of the settings scaled to the budget (None: none).
        seed: seeds the search, the estimate's image draws and the finetuning.
        split_seed: seeds the validation split (0: the split ``slimforge compress --train`` holds out).
        estimate: how candidates are scored.
        finetune_epochs: epochs of the identical finetune every final model gets (0: none).
        finetune_lr: its peak learning rate (cosine to 0).
        batch_size: its batch size.
    """

    search_budget: int = 40
    algorithm: str = "nsga2"
    algorithm_settings: dict[str, Any] | None = None
    seed: int = 0
    split_seed: int = 0
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    finetune_epochs: int = 5
    finetune_lr: float = 0.01
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_count("search budget", self.search_budget, 1)
        check_count("finetune epochs", self.finetune_epochs, 0)
        check_count("seed", self.seed, 0)
        check_count("split seed", self.split_seed, 0)
        check_count("batch size", self.batch_size, 1)
        _positive("finetune lr", self.finetune_lr)
        if not isinstance(self.algorithm, str):
            raise InvalidInputError(f"algorithm must be a name, got {self.algorithm!r}")
        if self.estimate is None:  # None reads as the default estimate, as every search's estimate= did
            object.__setattr__(self, "estimate", EstimateConfig())
        if not isinstance(self.estimate, EstimateConfig):
            raise InvalidInputError(f"estimate must be an EstimateConfig, got {type(self.estimate).__name__}")

    @property
    def train(self) -> dict[str, Any]:
        """The finetune's keyword arguments (:func:`~slimforge.compress.auto.finetune_model`)."""
        return {
            "epochs": self.finetune_epochs,
            "lr": self.finetune_lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }


def apply_fields(fields: Mapping[str, Any], *records: Any, what: str) -> tuple[Any, ...]:
    """``records`` with each keyword of ``fields`` set on the record that has a field of that name.

    Raises:
        InvalidInputError: a keyword no record has (the message lists the ones they do).
    """
    out = list(records)
    for key, value in fields.items():
        for i, record in enumerate(out):
            if key in {f.name for f in dataclasses.fields(record)}:
                out[i] = dataclasses.replace(record, **{key: value})
                break
        else:
            known = sorted(f.name for r in records for f in dataclasses.fields(r))
            raise InvalidInputError(f"{what} takes no setting {key!r}; its settings: {', '.join(known)}")
    return tuple(out)
