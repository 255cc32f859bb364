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
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = ["ESTIMATE_SCORES", "EstimateConfig", "SearchSettings", "apply_fields", "check_count"]

#: what a candidate's estimate measures (see :class:`EstimateConfig`).
ESTIMATE_SCORES = ("top1", "fidelity")


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
    """How a candidate policy's accuracy is estimated during a search (see :func:`estimate_accuracy`).

    Args:
        recal_images: training images that re-calibrate batch-norm statistics (0: off).
        val_images: validation images the ``top1`` score is measured on (0: the whole validation split).
        finetune_steps: plain SGD steps (cross-entropy) on training batches before re-calibration.
        finetune_lr: learning rate of those steps and of the distillation steps.
        batch_size: batch size of those steps and of re-calibration.
        distill_steps: knowledge-distillation steps from the unpruned (float) network before
            re-calibration: soft targets at temperature 4 on training batches (0: none).
        score: ``top1`` (top-1 % on the validation images) or ``fidelity`` (agreement % with the
            unpruned network's output distribution, 100 x (1 - total variation), on the validation
            images plus ``score_images`` training images: no labels needed, so the set can be larger).
        score_images: training images added to the ``fidelity`` score set.
    """

    recal_images: int = 256
    val_images: int = 0
    finetune_steps: int = 0
    finetune_lr: float = 0.01
    batch_size: int = 64
    distill_steps: int = 0
    score: str = "top1"
    score_images: int = 0

    def __post_init__(self) -> None:
        for name in ("recal_images", "val_images", "finetune_steps", "distill_steps", "score_images"):
            check_count(name, getattr(self, name), 0)
        check_count("batch_size", self.batch_size, 1)
        _positive("finetune_lr", self.finetune_lr)
        if self.score not in ESTIMATE_SCORES:
            raise InvalidInputError(
                f"estimate score {self.score!r} is not one of {', '.join(ESTIMATE_SCORES)}"
            )

    @property
    def needs_teacher(self) -> bool:
        """Whether the estimate compares with (or distils from) the unpruned network."""
        return self.distill_steps > 0 or self.score == "fidelity"

    def describe(self, what: str, num_val: int, bn: bool = True, num_score: int | None = None) -> str:
        """The estimate in one sentence, for reports."""
        steps = f" + {self.finetune_steps} SGD steps (lr {self.finetune_lr:g})" if self.finetune_steps else ""
        if self.distill_steps:
            steps += f" + {self.distill_steps} distillation steps from the unpruned network (lr {self.finetune_lr:g})"
        recal = (
            f" + BN re-calibration on {self.recal_images} training images"
            if self.recal_images and bn
            else " (no BN re-calibration: the model has no BatchNorm)"
            if self.recal_images
            else ""
        )
        if self.score == "fidelity":
            n = num_score if num_score is not None else num_val + self.score_images
            return f"fidelity to the unpruned network (100 x (1 - total variation)) on {n} images after {what}{steps}{recal}"
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
        fill: spend what the chosen policy leaves of the budget: greedily give back the most
            sensitive layer's next step (fewer pruned channels, more bits) while the budget holds.
        noise_repeats: how often the chosen policy's estimate is repeated with other image draws
            to measure the estimate's noise (0: not measured).
        rerank: fill the best ``rerank`` feasible candidates first and choose among them by
            ``rerank_estimate`` (0: the search's best, by its own estimate).
        rerank_estimate: the (costlier, better ranking) estimate of the re-ranking; None: ``estimate``.
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
    fill: bool = True
    noise_repeats: int = 3
    rerank: int = 0
    rerank_estimate: EstimateConfig | None = None

    def __post_init__(self) -> None:
        check_count("search budget", self.search_budget, 1)
        check_count("noise repeats", self.noise_repeats, 0)
        check_count("rerank", self.rerank, 0)
        if self.rerank_estimate is None:
            object.__setattr__(
                self, "rerank_estimate", self.estimate if self.estimate is not None else EstimateConfig()
            )
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
