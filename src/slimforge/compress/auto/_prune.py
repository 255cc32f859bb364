"""Per-layer pruning policy search (AMC-style) against a MACs, latency or size budget.

AMC (He et al., "AMC: AutoML for Model Compression and Acceleration on Mobile Devices", ECCV 2018)
learns one pruning ratio per layer under a FLOPs or latency budget and beats a uniform ratio at
the same cost. Here the policy is a genome of :class:`PrunePolicySpace` (one ratio per prunable
torch-pruning group, 0 to 0.8 in steps of 0.1) searched by the policy-search engine
(:func:`~slimforge.compress.auto.run_task`): objectives are the estimated error and the budget's
cost, and the budget is a hard constraint. Every candidate is *physically* pruned (a copy), so its
MACs, bytes and measured latency are the real ones. Its accuracy is the cheap estimate of
:func:`estimate_accuracy` (BN re-calibration on training images, optionally a few SGD steps,
validation split).

The best feasible policy is then applied and finetuned, and so is the uniform baseline: the same
ratio for every group, the smallest that meets the same budget on the same cost metric (found by
bisection), finetuned with the same epochs, so the two compare like for like.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.compress.auto._budget import Budget
from slimforge.compress.auto._common import finetune_model, measure_model_latencies
from slimforge.compress.auto._engine import (
    Finished,
    Found,
    SavedModel,
    SearchSetup,
    budget_problem,
)
from slimforge.compress.auto._estimate import (
    estimate_accuracy,
    has_batchnorm,
)
from slimforge.compress.auto._fill import FillResult
from slimforge.compress.auto._layer_task import LayerContext, LayerPolicyTask, estimate_data
from slimforge.compress.auto._prune_eval import (
    LatencyRatio,
    PrunePolicyEvaluator,
    cost_function,
    float_bytes,
    over_bound_note,
    prune_row,
    prune_sensitivity,
    sensitivity_guide,
    uniform_ratio_for_budget,
)
from slimforge.compress.auto._results import AutoPruneResult
from slimforge.compress.auto._settings import SearchSettings
from slimforge.compress.auto._spaces import PrunePolicySpace
from slimforge.compress.prune import (
    IMPORTANCES,
    SkippedLayer,
    check_criterion,
    prunable_groups,
)
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.spaces import Genome

__all__ = [
    "PRUNE_BUDGET_KEYS",
    "PruneOptions",
    "PruneTask",
    "auto_prune",
]

#: the budget keys the pruning search takes.
PRUNE_BUDGET_KEYS = ("macs", "latency", "latency_ms", "bytes", "size")


@dataclass(frozen=True)
class PruneOptions(JsonRecord):
    """What the pruning search alone takes.

    Args:
        criterion: channel importance criterion (``l1``, ``l2``, ``bn``, ``taylor``, ``random``).
        ratios: the per-group choices (ascending, in [0, 1)).
        round_to: keep channel counts multiples of this, in the search and in the uniform baseline
            (odd widths can run slower than the original on vector CPUs; e.g. 8 under a latency budget).
        measure_latency: measure the final models' latency (interleaved, ``latency_time_cap_s`` each).
        latency_time_cap_s: seconds of timed runs per final model.
        candidate_latency_cap_s: seconds of timed runs per candidate under a latency budget.
    """

    criterion: str = "l1"
    ratios: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(9))
    round_to: int | None = None
    measure_latency: bool = True
    latency_time_cap_s: float = 5.0
    candidate_latency_cap_s: float = 0.5

    def __post_init__(self) -> None:
        IMPORTANCES.get(self.criterion)  # an unknown name raises with close matches
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if self.round_to is not None and (
            isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1
        ):
            raise InvalidInputError(f"round_to must be an integer >= 1, got {self.round_to!r}")


@dataclass(frozen=True, eq=False)
class _Context(LayerContext):
    """The pruning task's state between its setup and finish hooks."""

    groups: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    reference: dict[str, float]
    cost_of: Callable[[nn.Module], float]
    uniform_ratio: float | None
    budget: Budget
    latency_conditions: str | None


class PruneTask(LayerPolicyTask):
    """The pruning search's hooks: the policy space and evaluator, the uniform baseline, the record."""

    result_name = "auto_prune"
    budget_keys = PRUNE_BUDGET_KEYS
    what = "the pruning policy search"
    search_key = "policy"
    default_key = "latency"

    options: PruneOptions

    def _setup(self, budget: Budget, settings: SearchSettings) -> SearchSetup:
        from slimforge.hardware import count_macs

        opts, estimate, seed = self.options, settings.estimate, settings.seed
        loaded = self._load(settings)
        source, base, splits, input_shape = loaded
        batches = []
        if opts.criterion == "taylor":
            from slimforge.data import sample_batch

            batches = [sample_batch(splits.train, min(64, len(splits.train)), seed=seed)]
        check_criterion(base, opts.criterion, batches)
        groups, skipped, ignored = prunable_groups(base, input_shape)
        for s in skipped:
            if not s.reason.startswith("output layer"):
                warnings.warn(f"the pruning search skips {s.layer}: {s.reason}", UserWarning, stacklevel=4)
        if (
            not has_batchnorm(base)
            and estimate.recal_images
            and not (estimate.finetune_steps or estimate.distill_steps)
        ):
            warnings.warn(
                f"{source.label} has no BatchNorm: candidates are scored right after pruning, without "
                "re-calibration; give the estimate finetune steps for a better score",
                UserWarning,
                stacklevel=4,
            )
        metric = budget.metric
        latency = (
            LatencyRatio(base, input_shape, opts.candidate_latency_cap_s) if metric == "latency_ms" else None
        )
        cost_of = cost_function(metric, input_shape, latency)
        reference = {"macs": float(count_macs(base, input_shape)), "bytes": float(float_bytes(base))}
        if latency is not None:
            reference["latency_ms"] = latency.reference_ms
        bound = budget.bound(reference[metric])
        top = max(opts.ratios)
        space = PrunePolicySpace(
            base,
            input_shape,
            groups,
            opts.ratios,
            criterion=opts.criterion,
            ignored=ignored,
            seed=seed,
            batches=batches,
            round_to=opts.round_to,
        )
        extreme = space.genome_of(top)
        smallest_cost = cost_of(space.build(extreme, num_classes=splits.num_classes))
        smallest = f"the smallest policy (every group at ratio {top:g})"
        if smallest_cost > bound:
            return SearchSetup(None, metric, bound, reference[metric], extreme, smallest_cost, smallest)

        uniform_ratio = uniform_ratio_for_budget(
            lambda r: cost_of(space.prune(dict.fromkeys(groups, r))) if r else reference[metric],
            bound,
            max_ratio=top,
        )
        data_t = estimate_data(splits, base, estimate, seed)
        ranking = prune_sensitivity(space, data_t, estimate)
        # Guided samples centre on the uniform ratio that meets the budget and prune sensitive groups less.
        space = space.guided(
            uniform_ratio if uniform_ratio is not None else top,
            tuple(-g for g in sensitivity_guide(groups, ranking)),
        )
        evaluator = PrunePolicyEvaluator(space, data_t, estimate, latency=latency)
        problem = budget_problem(space, evaluator, metric, bound)
        context = _Context(
            *loaded,
            space=space,
            data=data_t,
            estimate=estimate,
            ranking=ranking,
            groups=tuple(groups),
            skipped=tuple(skipped),
            reference=reference,
            cost_of=cost_of,
            uniform_ratio=uniform_ratio,
            budget=budget,
            latency_conditions=None if latency is None else latency.conditions,
        )
        return SearchSetup(
            problem, metric, bound, reference[metric], extreme, smallest_cost, smallest, context
        )

    def fill(self, setup: SearchSetup, genome: Genome) -> tuple[Genome, FillResult] | None:
        """Un-prune one ratio step at a time, the group with the highest drop per MAC first.

        Under a latency budget each step is timed three times longer than a search candidate: a
        step is kept when its measured ratio fits, and a short, noisy timing would keep steps that
        only fit by chance.
        """
        c: _Context = setup.context
        if isinstance(c.cost_of, LatencyRatio):
            cap = 3 * c.cost_of.time_cap_s
            cost = lambda g: c.cost_of(c.space.build(g, num_classes=1), time_cap_s=cap)
        else:
            cost = lambda g: c.cost_of(c.space.build(g, num_classes=1))
        return self._fill_ranked(setup, genome, cost, direction=-1, timed=isinstance(c.cost_of, LatencyRatio))

    def _finish(self, setup: SearchSetup, found: Found, settings: SearchSettings) -> Finished:
        from slimforge.hardware import MACS_NOTE

        c: _Context = setup.context
        opts, metric, bound, chosen = self.options, setup.metric, setup.bound, found.chosen
        searched = c.space.build(chosen.genome, num_classes=c.splits.num_classes)
        finetune_model(searched, c.splits, **settings.train)
        row = functools.partial(prune_row, splits=c.splits, input_shape=c.input_shape, bound=bound)
        rows = [
            row(
                "original",
                "-",
                c.base,
                estimate=estimate_accuracy(copy.deepcopy(c.base), c.data, settings.estimate),
                cost=c.reference[metric],
                epochs=0,
            ),
            row(
                "searched",
                c.space.to_string(chosen.genome),
                searched,
                estimate=chosen.metrics["accuracy"],
                cost=chosen.metrics[metric],
                epochs=settings.finetune_epochs,
            ),
        ]
        models = [c.base, searched]
        saved = [
            SavedModel("searched", searched, c.source.config, (f"auto:prune:{c.budget.text}",), c.input_shape)
        ]
        message = found.message
        if c.uniform_ratio is not None:
            uniform = c.space.prune(dict.fromkeys(c.groups, c.uniform_ratio))
            est = estimate_accuracy(copy.deepcopy(uniform), c.data, settings.estimate)
            finetune_model(uniform, c.splits, **settings.train)
            rows.append(
                row(
                    f"uniform {c.uniform_ratio:g}",
                    f"{c.uniform_ratio:g} every group",
                    uniform,
                    estimate=est,
                    cost=c.cost_of(uniform),
                    epochs=settings.finetune_epochs,
                )
            )
            models.append(uniform)
            saved.append(
                SavedModel(
                    "uniform",
                    uniform,
                    c.source.config,
                    (f"prune:{opts.criterion}:{c.uniform_ratio:g}",),
                    c.input_shape,
                )
            )
        else:
            message += f"; no uniform ratio up to {max(opts.ratios):g} meets the budget: no uniform baseline"
        if c.uniform_ratio == 0.0:
            message += "; the original already meets the budget"
        conditions = None
        if opts.measure_latency:
            latencies, conditions = measure_model_latencies(
                models, c.input_shape, time_cap_s=opts.latency_time_cap_s
            )
            # The models ran interleaved with the original (row 0): a latency budget bounds their ratio to it.
            ref = c.reference.get("latency_ms", latencies[0])
            rows = [
                replace(
                    r,
                    latency_ms=lat,
                    **(
                        {
                            "cost": ref * lat / latencies[0],
                            "within_budget": ref * lat / latencies[0] <= bound * (1 + 1e-9),
                        }
                        if metric == "latency_ms"
                        else {}
                    ),
                )
                for r, lat in zip(rows, latencies)
            ]
        budget_met = bool(rows[1].within_budget)
        if chosen.feasible or found.fill is not None:  # it met the bound when chosen: say why it is over now
            when = found.fill.cost_after if found.fill is not None else chosen.metrics[metric]
            message += over_bound_note("the searched policy", metric, rows[1].cost, bound, search_cost=when)
        if c.uniform_ratio:
            message += over_bound_note(
                f"the uniform {c.uniform_ratio:g} baseline", metric, rows[2].cost, bound
            )
        record = AutoPruneResult(
            model=c.source.label,
            data=str(c.splits.spec),
            budget=c.budget.text,
            budget_metric=metric,
            budget_bound=bound,
            budget_met=budget_met,
            message=message,
            reference=c.reference,
            criterion=opts.criterion,
            estimate=settings.estimate.describe(
                "pruning",
                len(c.data.val_labels),
                has_batchnorm(c.base),
                None if c.data.score_images is None else len(c.data.score_images),
            ),
            **found.record_fields(settings),
            groups=c.groups,
            skipped=c.skipped,
            policy=c.space.policy(chosen.genome),
            uniform_ratio=c.uniform_ratio,
            rows=tuple(rows),
            latency_conditions=conditions or c.latency_conditions,
            macs_note=MACS_NOTE,
            sensitivity=c.ranking,
        )
        return Finished(record, tuple(saved))

    def format(self, record: JsonRecord) -> str:
        from slimforge.compress.auto._report import format_auto_prune

        return format_auto_prune(record)


def auto_prune(
    model: str | nn.Module,
    data: str | DatasetSplits,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    settings: SearchSettings | None = None,
    options: PruneOptions | None = None,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **fields: Any,
) -> AutoPruneResult:
    """Search a per-group pruning policy under ``budget``, apply and finetune it, compare with uniform.

    Args:
        model: a zoo name, a saved model directory, or an ``nn.Module`` (then give ``model_config``);
            never changed.
        data: a data spec or loaded splits; candidates are scored on the validation split, the
            final models also on the test split.
        budget: ``macs=F`` (fraction of the original's MACs), ``size=F`` (fraction of its bytes),
            ``bytes=N``, ``latency_ms=X`` or ``latency=F`` (a fraction of the original's; ONNX Runtime,
            1 thread, batch 1, measured per candidate).
        out_dir: gets ``auto_prune.json``, ``auto_prune.txt``, ``searches.json`` (every evaluation),
            and the finetuned models ``searched/`` and ``uniform/`` (reload with
            :func:`slimforge.io.load_model`); None writes nothing.
        settings: how the search runs (:class:`SearchSettings`: budget of evaluations, algorithm,
            seeds, the estimate, the finetune both final models get).
        options: what only pruning takes (:class:`PruneOptions`: criterion, ratios, rounding, latency).
        model_config, width: the config that rebuilds an ``nn.Module`` ``model``; a zoo name's width.
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bar on stderr.
        **fields: any field of :class:`SearchSettings` or :class:`PruneOptions` (``seed=1``,
            ``criterion="l2"``), applied on top of ``settings`` / ``options``.
    """
    return PruneTask.run(  # type: ignore[return-value]
        model,
        data,
        budget,
        out_dir,
        settings or SearchSettings(),
        options or PruneOptions(),
        model_config=model_config,
        width=width,
        overwrite=overwrite,
        progress=progress,
        fields=fields,
    )
