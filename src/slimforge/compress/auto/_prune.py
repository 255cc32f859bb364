"""Per-layer pruning policy search (AMC-style) against a MACs, latency or size budget.

AMC (He et al., "AMC: AutoML for Model Compression and Acceleration on Mobile Devices", ECCV 2018)
learns one pruning ratio per layer under a FLOPs or latency budget and beats a uniform ratio at
the same cost. Here the policy is a genome of :class:`PrunePolicySpace` (one ratio per prunable
torch-pruning group, 0 to 0.8 in steps of 0.1) searched with slimforge's multi-objective engine
(NSGA-II by default): objectives are the estimated error and the budget's cost, and the budget is a
hard constraint. Every candidate is *physically* pruned (a copy), so its MACs, bytes and measured
latency are the real ones. Its accuracy is the cheap estimate of :func:`estimate_accuracy` (BN
re-calibration on training images, optionally a few SGD steps, validation split).

The best feasible policy is then applied and finetuned, and so is the uniform baseline: the same
ratio for every group, the smallest that meets the same budget on the same cost metric (found by
bisection), finetuned with the same epochs, so the two compare like for like.
"""

from __future__ import annotations

import copy
import functools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimforge.compress._auto_common import (
    AutoRow,
    EstimateConfig,
    EstimateData,
    PolicyPoint,
    check_search_args,
    closest,
    estimate_accuracy,
    front_points,
    has_batchnorm,
    load_source,
    load_splits,
    measure_model_latencies,
    finetune_model,
    run_policy_search,
    search_message,
    write_result,
)
from slimforge.compress._budget import Budget
from slimforge.compress._policy_space import PrunePolicySpace
from slimforge.compress._structured import IMPORTANCES, PruneResult, SkippedLayer
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.hardware._json import JsonRecord
from slimforge.search.evaluator import Evaluator
from slimforge.spaces import Genome

__all__ = [
    "PRUNE_BUDGET_KEYS",
    "AutoPruneResult",
    "PrunePolicyEvaluator",
    "apply_prune_policy",
    "auto_prune",
    "prunable_groups",
    "uniform_ratio_for_budget",
]

#: the budget keys the pruning search takes.
PRUNE_BUDGET_KEYS = ("macs", "latency", "latency_ms", "bytes", "size")
def prunable_groups(
    model: nn.Module, input_shape: Sequence[int]
) -> tuple[list[str], list[SkippedLayer], list[str]]:
    """(prunable groups in forward order, skipped layers with reasons, layers to leave alone).

    Raises:
        NotTraceableError: when torch-pruning cannot trace ``model``.
        InvalidInputError: when no group can be pruned.
    """
    from slimforge.compress._structured import _check

    prunable, skipped, ignored = _check(model, input_shape)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    prunable.sort(key=lambda n: order[n])
    if not prunable:
        reasons = "; ".join(f"{s.layer} ({s.reason})" for s in skipped) or "it has no conv or linear layer"
        raise InvalidInputError(
            f"no layer group of {type(model).__name__} can be pruned structurally: {reasons}; "
            "use quantization (--auto bits) instead"
        )
    return prunable, skipped, ignored


def _check_criterion(model: nn.Module, criterion: str, batches: Sequence[Any]) -> None:
    IMPORTANCES.get(criterion)  # an unknown name raises with close matches
    if criterion == "bn" and not has_batchnorm(model):
        raise InvalidInputError(
            f"criterion 'bn' ranks channels by BatchNorm scales, but {type(model).__name__} has no "
            "BatchNorm layer; use l1, l2 or taylor"
        )
    if criterion == "taylor" and not batches:
        raise InvalidInputError("the taylor criterion needs labelled batches for its gradients (batches=...)")


def apply_prune_policy(
    model: nn.Module,
    input_shape: Sequence[int],
    ratios: Mapping[str, float],
    *,
    criterion: str = "l1",
    seed: int = 0,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    ignored: Sequence[str] | None = None,
    round_to: int | None = None,
) -> PruneResult:
    """Prune each group of ``model`` by its own ratio, in place (a ratio of 0 leaves a group alone).

    Args:
        model: the network (changed in place).
        input_shape: tracing input, batch included.
        ratios: group (named by its first layer, as :func:`check_prunable` lists it) -> ratio in [0, 1).
        criterion: a name from :data:`IMPORTANCES`.
        seed: seeds the ``random`` criterion.
        batches: labelled batches for the ``taylor`` criterion.
        ignored: layers to leave alone; None finds them (and warns about each skipped layer).
        round_to: keep channel counts multiples of this (vector widths such as 8 run faster).

    Returns:
        A :class:`PruneResult` whose ``ratio`` is the mean of the per-group ratios.
    """
    from slimforge.compress._structured import _check, _taylor_gradients, _tp

    tp = _tp()
    _check_criterion(model, criterion, batches)
    modules = dict(model.named_modules())
    for path, r in ratios.items():
        if path not in modules:
            raise InvalidInputError(f"pruning policy names {path!r}: the model has no such layer")
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= float(r) < 1.0:
            raise InvalidInputError(f"pruning ratio {r!r} of {path!r} must lie in [0, 1)")
    skipped: list[SkippedLayer] = []
    if ignored is None:
        _, skipped, ignored = _check(model, input_shape)
        for s in skipped:
            if not s.reason.startswith("output layer"):
                warnings.warn(f"structured pruning skips {s.layer}: {s.reason}", UserWarning, stacklevel=2)
    before = sum(p.numel() for p in model.parameters())
    active = {modules[k]: float(v) for k, v in ratios.items() if v > 0 and k not in set(ignored)}
    if active:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.BasePruner(
                model,
                torch.zeros(tuple(input_shape)),
                IMPORTANCES.get(criterion)(seed),
                pruning_ratio=0.0,
                pruning_ratio_dict=active,
                ignored_layers=[modules[n] for n in ignored],
                round_to=round_to,
            )
            if criterion == "taylor":
                _taylor_gradients(model, batches)
            pruner.step()
        model.zero_grad(set_to_none=True)
    values = [float(v) for v in ratios.values()]
    return PruneResult(
        criterion=criterion,
        ratio=sum(values) / len(values) if values else 0.0,
        steps=1,
        global_pruning=False,
        num_params_before=before,
        num_params_after=sum(p.numel() for p in model.parameters()),
        skipped=tuple(skipped),
    )


def _model_bytes(model: nn.Module) -> int:
    # Float32 weights, as slimforge's structured pruning deploys them.
    return 4 * sum(p.numel() for p in model.parameters())


def _cost_function(
    metric: str, input_shape: Sequence[int], latency_cap_s: float
) -> Callable[[nn.Module], float]:
    from slimforge.hardware import count_macs

    if metric == "macs":
        return lambda m: float(count_macs(m, tuple(input_shape)))
    if metric == "bytes":
        return lambda m: float(_model_bytes(m))
    return lambda m: measure_model_latencies([m], input_shape, time_cap_s=latency_cap_s)[0][0]


class PrunePolicyEvaluator(Evaluator):
    """Error (estimate), MACs, bytes and optionally measured latency of a pruning policy.

    It holds the model and the estimate's tensors, so it runs in-process (no process executor).
    """

    def __init__(
        self,
        space: PrunePolicySpace,
        data: EstimateData,
        config: EstimateConfig,
        *,
        latency_cap_s: float | None = None,
    ) -> None:
        metrics = ("error", "accuracy", "macs", "macs_ratio", "num_params", "bytes")
        super().__init__(space, metrics + (("latency_ms",) if latency_cap_s else ()))
        from slimforge.hardware import count_macs

        self.data = data
        self.config = config
        self.latency_cap_s = latency_cap_s
        self.macs0 = count_macs(space.model, space.input_shape)

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        from slimforge.hardware import count_macs

        space: PrunePolicySpace = self.space  # type: ignore[assignment]
        model = space.build(genome, num_classes=1)
        macs = count_macs(model, space.input_shape)
        out = {
            "macs": float(macs),
            "macs_ratio": macs / self.macs0,
            "num_params": float(sum(p.numel() for p in model.parameters())),
            "bytes": float(_model_bytes(model)),
        }
        if self.latency_cap_s:
            latencies, _ = measure_model_latencies([model], space.input_shape, time_cap_s=self.latency_cap_s)
            out["latency_ms"] = latencies[0]
        acc = estimate_accuracy(model, self.data, self.config)
        out.update(accuracy=acc, error=100.0 - acc)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "estimate": self.config.to_dict()}


def uniform_ratio_for_budget(
    cost: Callable[[float], float], bound: float, *, max_ratio: float = 0.8, iterations: int = 10
) -> float | None:
    """The smallest uniform ratio in [0, ``max_ratio``] whose ``cost(ratio)`` is within ``bound`` (bisection).

    ``cost`` should not increase with the ratio (MACs and bytes do not; a measured latency nearly so).
    Returns 0.0 when the unpruned model already meets the bound, None when ``max_ratio`` does not.
    The search passes the largest ratio of its policy space, so the uniform baseline draws from the
    same range as each group of the searched policy.
    """
    if cost(0.0) <= bound:
        return 0.0
    if cost(max_ratio) > bound:
        return None
    low, high = 0.0, max_ratio
    for _ in range(iterations):
        mid = (low + high) / 2
        if cost(mid) <= bound:
            high = mid
        else:
            low = mid
    return round(high, 4)


@dataclass(frozen=True)
class AutoPruneResult(JsonRecord):
    """What :func:`auto_prune` found: the policy, the searched front, and the comparison with uniform.

    ``budget_bound`` is the absolute bound on ``budget_metric`` (``macs``, ``latency_ms`` or ``bytes``);
    ``reference`` the original's costs. ``policy`` maps each prunable group to its ratio (groups in
    forward order, also in ``groups``); ``front`` lists the feasible non-dominated policies as
    comma-separated ratios in that order. ``rows`` are the original, the searched policy and the
    uniform baseline, each finetuned ``finetune_epochs`` (the original is not finetuned).
    """

    model: str
    data: str
    budget: str
    budget_metric: str
    budget_bound: float
    budget_met: bool
    message: str
    reference: dict[str, float]
    criterion: str
    estimate: str
    algorithm: str
    search_budget: int
    num_evaluations: int
    num_feasible: int
    search_s: float
    seed: int
    groups: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]
    policy: dict[str, float]
    uniform_ratio: float | None
    front: tuple[PolicyPoint, ...]
    rows: tuple[AutoRow, ...]
    finetune_epochs: int
    latency_conditions: str | None
    macs_note: str


def _row(
    name: str,
    policy: str,
    model: nn.Module,
    splits: DatasetSplits,
    input_shape: Sequence[int],
    *,
    estimate: float,
    cost: float,
    bound: float,
    epochs: int,
) -> AutoRow:
    from slimforge.compress._train import accuracy
    from slimforge.hardware import count_macs

    return AutoRow(
        name=name,
        policy=policy,
        estimate_accuracy_pct=estimate,
        val_accuracy_pct=accuracy(model, splits.val),
        test_accuracy_pct=None if splits.test is None else accuracy(model, splits.test),
        macs=count_macs(model, tuple(input_shape)),
        num_params=sum(p.numel() for p in model.parameters()),
        bytes=_model_bytes(model),
        latency_ms=None,
        cost=cost,
        within_budget=cost <= bound * (1 + 1e-9),
        finetune_epochs=epochs,
    )


def auto_prune(
    model: str | nn.Module,
    data: str | DatasetSplits,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    search_budget: int = 40,
    algorithm: str = "nsga2",
    algorithm_settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    split_seed: int = 0,
    criterion: str = "l1",
    ratios: Sequence[float] = tuple(round(0.1 * i, 1) for i in range(9)),
    round_to: int | None = None,
    estimate: EstimateConfig | None = None,
    finetune_epochs: int = 5,
    finetune_lr: float = 0.01,
    batch_size: int = 64,
    measure_latency: bool = True,
    latency_time_cap_s: float = 5.0,
    candidate_latency_cap_s: float = 0.5,
    overwrite: bool = False,
    progress: bool = False,
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
            :func:`slimforge.runs.model_io.load_model`); None writes nothing.
        search_budget: distinct policies evaluated.
        algorithm: a name from :data:`slimforge.search.ALGORITHMS`; ``algorithm_settings`` override
            the settings scaled to the budget (:func:`search_settings`).
        seed: seeds the search, the estimate's image draws and the finetuning.
        split_seed: seeds the validation split (0: the split ``slimforge compress --train`` holds out).
        criterion: channel importance criterion (``l1``, ``l2``, ``bn``, ``taylor``, ``random``).
        ratios: the per-group choices.
        round_to: keep channel counts multiples of this, in the search and in the uniform baseline
            (odd widths can run slower than the original on vector CPUs; use e.g. 8 under a latency budget).
        estimate: how candidates are scored (:class:`EstimateConfig`).
        finetune_epochs, finetune_lr, batch_size: the finetune both final models get.
        measure_latency: measure the final models' latency (interleaved, ``latency_time_cap_s`` each).
        candidate_latency_cap_s: seconds of timed runs per candidate under a ``latency_ms`` budget.
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bar on stderr.
    """
    from slimforge.hardware import MACS_NOTE, count_macs

    args = check_search_args(
        budget, PRUNE_BUDGET_KEYS, "the pruning policy search", search_budget, algorithm, finetune_epochs, out_dir, overwrite
    )
    budget, search_budget, algorithm, finetune_epochs, out = (
        args.budget, args.search_budget, args.algorithm, args.finetune_epochs, args.out
    )
    estimate = estimate or EstimateConfig()
    splits = load_splits(data, split_seed)
    source = load_source(model, splits, width, model_config)
    base = source.model.eval()
    input_shape = (1, *splits.input_shape)
    batches = []
    if criterion == "taylor":
        from slimforge.data import sample_batch

        batches = [sample_batch(splits.train, min(64, len(splits.train)), seed=seed)]
    _check_criterion(base, criterion, batches)
    groups, skipped, ignored = prunable_groups(base, input_shape)
    for s in skipped:
        if not s.reason.startswith("output layer"):
            warnings.warn(f"the pruning search skips {s.layer}: {s.reason}", UserWarning, stacklevel=2)
    if not has_batchnorm(base) and estimate.recal_images and not estimate.finetune_steps:
        warnings.warn(
            f"{source.label} has no BatchNorm: candidates are scored right after pruning, without "
            "re-calibration; give the estimate finetune steps for a better score",
            UserWarning,
            stacklevel=2,
        )
    data_t = EstimateData.from_splits(splits, estimate, seed)
    metric = budget.metric
    cost_of = _cost_function(metric, input_shape, candidate_latency_cap_s)
    reference = {"macs": float(count_macs(base, input_shape)), "bytes": float(_model_bytes(base))}
    if metric == "latency_ms":
        reference["latency_ms"] = cost_of(base)
    bound = budget.bound(reference[metric])

    def prune_uniform(r: float) -> nn.Module:
        m = copy.deepcopy(base)
        apply_prune_policy(
            m,
            input_shape,
            dict.fromkeys(groups, r),
            criterion=criterion,
            seed=seed,
            batches=batches,
            ignored=ignored,
            round_to=round_to,
        )
        return m

    uniform_ratio = uniform_ratio_for_budget(
        lambda r: cost_of(prune_uniform(r)) if r else reference[metric], bound, max_ratio=max(ratios)
    )
    space = PrunePolicySpace(
        base,
        input_shape,
        groups,
        ratios,
        criterion=criterion,
        ignored=ignored,
        seed=seed,
        batches=batches,
        center=uniform_ratio if uniform_ratio is not None else max(ratios),
        round_to=round_to,
    )
    evaluator = PrunePolicyEvaluator(
        space, data_t, estimate, latency_cap_s=candidate_latency_cap_s if metric == "latency_ms" else None
    )
    from slimforge.search import Constraint, Problem

    problem = Problem(space, ("error", metric), [evaluator], [Constraint(metric, "<=", bound)])
    start = time.perf_counter()
    extreme_genome = space.genome_of(max(ratios))
    feasible_space = cost_of(space.build(extreme_genome, num_classes=splits.num_classes)) <= bound
    if not feasible_space:
        # Nothing in the space meets the budget: the most pruned policy is the closest result.
        extreme = problem.evaluate(extreme_genome)
        searches = {}
        chosen, num_evaluations, num_feasible, front = extreme, 1, 0, ()
        message = (
            f"budget {budget.text} cannot be met: even every group at ratio {max(ratios):g} leaves "
            f"{metric} {extreme.metrics[metric]:.4g} > {bound:.4g}; showing that closest policy"
        )
    else:
        result = run_policy_search(
            problem,
            algorithm,
            budget=search_budget,
            seed=seed,
            settings=algorithm_settings,
            progress=progress,
        )
        searches = {"policy": result}
        chosen = closest(result, metric)
        num_evaluations, num_feasible = result.num_evaluations, result.num_feasible
        front = front_points(result, metric)
        message = search_message(result, metric, bound)
    search_s = time.perf_counter() - start
    policy = space.policy(chosen.genome)
    searched = space.build(chosen.genome, num_classes=splits.num_classes)
    train = dict(epochs=finetune_epochs, lr=finetune_lr, batch_size=batch_size, seed=seed)
    finetune_model(searched, splits, **train)
    row = functools.partial(_row, splits=splits, input_shape=input_shape, bound=bound)
    rows = [
        row("original", "-", base, estimate=estimate_accuracy(copy.deepcopy(base), data_t, estimate),
            cost=reference[metric], epochs=0),
        row("searched", space.to_string(chosen.genome), searched, estimate=chosen.metrics["accuracy"],
            cost=chosen.metrics[metric], epochs=finetune_epochs),
    ]
    models = [base, searched]
    if uniform_ratio is not None:
        uniform = prune_uniform(uniform_ratio)
        est = estimate_accuracy(copy.deepcopy(uniform), data_t, estimate)
        finetune_model(uniform, splits, **train)
        rows.append(
            row(f"uniform {uniform_ratio:g}", f"{uniform_ratio:g} every group", uniform, estimate=est,
                cost=cost_of(uniform), epochs=finetune_epochs)
        )
        models.append(uniform)
    else:
        message += f"; no uniform ratio up to {max(ratios):g} meets the budget: no uniform baseline"
    if uniform_ratio == 0.0:
        message += "; the original already meets the budget"
    conditions = None
    if measure_latency:
        latencies, conditions = measure_model_latencies(models, input_shape, time_cap_s=latency_time_cap_s)
        rows = [
            replace(
                r,
                latency_ms=lat,
                **({"cost": lat, "within_budget": lat <= bound} if metric == "latency_ms" else {}),
            )
            for r, lat in zip(rows, latencies)
        ]
    budget_met = bool(rows[1].within_budget)
    if chosen.feasible and not budget_met:
        message += f"; the finetuned policy measured {rows[1].cost:.4g}, over the bound (measurement noise)"
    result_record = AutoPruneResult(
        model=source.label,
        data=str(splits.spec),
        budget=budget.text,
        budget_metric=metric,
        budget_bound=bound,
        budget_met=budget_met,
        message=message,
        reference=reference,
        criterion=criterion,
        estimate=estimate.describe("pruning", len(data_t.val_labels), has_batchnorm(base)),
        algorithm=algorithm,
        search_budget=search_budget,
        num_evaluations=num_evaluations,
        num_feasible=num_feasible,
        search_s=search_s,
        seed=seed,
        groups=tuple(groups),
        skipped=tuple(skipped),
        policy=policy,
        uniform_ratio=uniform_ratio,
        front=front,
        rows=tuple(rows),
        finetune_epochs=finetune_epochs,
        latency_conditions=conditions,
        macs_note=MACS_NOTE,
    )
    if out is not None:
        from slimforge.compress._auto_report import format_auto_prune
        from slimforge.compress._pipeline import _save_torch

        write_result(out, "auto_prune", result_record, searches)
        (out / "auto_prune.txt").write_text(format_auto_prune(result_record) + "\n", encoding="utf-8")
        _save_torch(searched, source.config, [f"auto:prune:{budget.text}"], input_shape, out / "searched")
        if uniform_ratio is not None:
            history = [f"prune:{criterion}:{uniform_ratio:g}"]
            _save_torch(models[2], source.config, history, input_shape, out / "uniform")
    return result_record
