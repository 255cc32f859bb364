"""The per-layer policy tasks' shared part: the loaded model and data, the context, the entry point.

:func:`~slimforge.compress.auto.auto_prune` and :func:`~slimforge.compress.auto.auto_bits` search a
policy over one base model's layers; :class:`LayerPolicyTask` loads that model and its data, keeps
them in a :class:`LayerContext`, and scores the policy networks again for the engine's noise and
re-ranking steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from slimforge.compress.auto._budget import Budget
from slimforge.compress.auto._common import load_source, load_splits
from slimforge.compress.auto._engine import PolicyTask, SearchSetup, run_task
from slimforge.compress.auto._estimate import EstimateData, EstimateNoise, estimate_accuracy, estimate_noise
from slimforge.compress.auto._fill import FillResult, fill_budget
from slimforge.compress.auto._settings import EstimateConfig, SearchSettings, apply_fields
from slimforge.data import DatasetSplits
from slimforge.io import JsonRecord
from slimforge.spaces import Genome

__all__ = ["LayerContext", "LayerPolicyTask", "LoadedModel", "estimate_data"]


class LoadedModel(NamedTuple):
    """What :meth:`LayerPolicyTask._load` gives, in the order of :class:`LayerContext`'s first fields."""

    source: Any
    base: nn.Module
    splits: DatasetSplits
    input_shape: tuple[int, ...]


def estimate_data(
    splits: DatasetSplits, base: nn.Module, estimate: EstimateConfig, seed: int
) -> EstimateData:
    """The images ``estimate`` scores candidates on; ``base`` is the teacher when the estimate distils."""
    return EstimateData.from_splits(splits, estimate, seed, teacher=base if estimate.needs_teacher else None)


@dataclass(frozen=True, eq=False)
class LayerContext:
    """What every :class:`LayerPolicyTask` keeps between its hooks; tasks subclass it with their own state.

    ``space`` builds a candidate (``build(genome, num_classes=1)``), ``data`` (its ``seed``) and
    ``estimate`` score it, ``base`` is the loaded model (the teacher when an estimate distils).
    ``ranking`` holds the layers' sensitivities (each with its ``layer``), most sensitive first.
    A context starts with a :class:`LoadedModel`'s fields: ``Context(*loaded, space=..., ...)``.
    """

    source: Any
    base: nn.Module
    splits: DatasetSplits
    input_shape: tuple[int, ...]
    space: Any
    data: EstimateData
    estimate: EstimateConfig
    ranking: tuple[Any, ...]


class LayerPolicyTask(PolicyTask):
    """A task whose candidates are the networks of a per-layer policy space over one base model.

    Its :attr:`SearchSetup.context` is a :class:`LayerContext`: :meth:`noise` and :meth:`score`
    estimate the networks of its ``space``.

    Args:
        model: a zoo name, a saved model directory, or an ``nn.Module`` (with ``model_config``).
        data: a data spec or loaded splits.
        options: what only this kind of search takes.
        model_config, width: the config that rebuilds an ``nn.Module`` ``model``; a zoo name's width.
    """

    def __init__(
        self,
        model: str | nn.Module,
        data: str | DatasetSplits,
        options: Any,
        *,
        model_config: Mapping[str, Any] | None = None,
        width: float | None = None,
    ) -> None:
        self.model = model
        self.data = data
        self.options = options
        self.model_config = model_config
        self.width = width

    @classmethod
    def run(
        cls,
        model: str | nn.Module,
        data: str | DatasetSplits,
        budget: str | Budget,
        out_dir: str | Path | None,
        settings: SearchSettings,
        options: Any,
        *,
        model_config: Mapping[str, Any] | None,
        width: float | None,
        overwrite: bool,
        progress: bool,
        fields: Mapping[str, Any],
    ) -> JsonRecord:
        """The search's record: ``fields`` set on ``settings`` / ``options``, then :func:`run_task`."""
        settings, options = apply_fields(fields, settings, options, what=cls.result_name)
        task = cls(model, data, options, model_config=model_config, width=width)
        return run_task(task, budget, settings, out_dir, overwrite=overwrite, progress=progress)

    def _load(self, settings: SearchSettings) -> LoadedModel:
        """The loaded source, its model in eval mode, the splits and the input shape (batch 1)."""
        splits = load_splits(self.data, settings.split_seed)
        source = load_source(self.model, splits, self.width, self.model_config)
        return LoadedModel(source, source.model.eval(), splits, (1, *splits.input_shape))

    def _fill_ranked(
        self,
        setup: SearchSetup,
        genome: Genome,
        cost: Callable[[Genome], float],
        *,
        direction: int,
        timed: bool = False,
    ) -> tuple[Genome, FillResult]:
        """:func:`fill_budget` over the context's space, the ranking's most sensitive layer first."""
        c: LayerContext = setup.context
        space = c.space
        index = {n: i for i, n in enumerate(space.layers)}
        return fill_budget(
            genome,
            space.num_choices,
            cost,
            setup.bound,
            [index[r.layer] for r in c.ranking],
            direction=direction,
            names=space.layers,
            values=lambda i, k: space.values[k],
            to_string=space.to_string,
            timed=timed,
        )

    def noise(
        self, setup: SearchSetup, genome: Genome, repeats: int, estimate: EstimateConfig
    ) -> EstimateNoise:
        c = setup.context
        return estimate_noise(
            lambda: c.space.build(genome, num_classes=1),
            c.splits,
            estimate,
            c.data.seed,
            repeats=repeats,
            teacher=c.base if estimate.needs_teacher else None,
        )

    def score(self, setup: SearchSetup, genome: Genome, estimate: EstimateConfig) -> float:
        c = setup.context
        data = estimate_data(c.splits, c.base, estimate, c.data.seed)
        return estimate_accuracy(c.space.build(genome, num_classes=1), data, estimate)
