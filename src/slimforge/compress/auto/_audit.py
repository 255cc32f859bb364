"""Which candidate estimate can tell pruning policies apart: measured against finetuned accuracy.

A search is only as good as the estimate that ranks its candidates. :func:`audit_estimates` draws a
seeded set of pruning policies that all sit at the budget (guided samples of the search's own
space, each filled to within one group's step of the bound, so they differ in shape, not in cost),
scores each with every estimate of :data:`ESTIMATES`, repeats each estimate with other image draws
on the first few policies (its noise), finetunes every policy identically and measures it, and
reports each estimate's Kendall tau and Spearman rho (95 % bootstrap intervals) against the
finetuned validation and test accuracy. It chooses by tau against *validation* accuracy; the test
split is reported, never used to choose. Progress is written per policy, so an interrupted audit
resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.compress.auto._budget import Budget, parse_budget
from slimforge.compress.auto._common import finetune_model
from slimforge.compress.auto._estimate import estimate_noise
from slimforge.compress.auto._fill import fill_budget
from slimforge.compress.auto._prune import PRUNE_BUDGET_KEYS, PruneOptions, PruneTask
from slimforge.compress.auto._settings import EstimateConfig, SearchSettings, apply_fields, check_count
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.registry import Registry

__all__ = ["ESTIMATES", "AuditedEstimate", "EstimateAudit", "audit_estimates", "format_estimate_audit"]

#: named candidate estimates: what the audit compares and ``--estimate NAME`` picks.
ESTIMATES: Registry[EstimateConfig] = Registry("candidate estimate")
ESTIMATES.register("bn", EstimateConfig())
ESTIMATES.register("bn-fidelity", EstimateConfig(score="fidelity", score_images=512))
ESTIMATES.register("kd", EstimateConfig(distill_steps=20))
ESTIMATES.register("kd-fidelity", EstimateConfig(distill_steps=20, score="fidelity", score_images=512))


@dataclass(frozen=True)
class AuditedEstimate(JsonRecord):
    """One estimate in the audit: its scores per policy, cost, noise, and rank agreement.

    ``spread_pct`` is the standard deviation of its scores over the policies (the signal),
    ``noise_std_pct`` the mean over the noise policies of the repeat-and-sampling noise (see
    :class:`EstimateNoise`). ``kendall_tau_val`` / ``spearman_rho_val`` are against the finetuned
    validation accuracy (``*_test`` against test), with 95 % bootstrap intervals.
    """

    name: str
    config: EstimateConfig
    scores_pct: tuple[float, ...]
    seconds_per_policy: float
    spread_pct: float
    noise_std_pct: float
    draw_std_pct: float
    sampling_se_pct: float
    kendall_tau_val: float | None
    tau_val_low: float | None
    tau_val_high: float | None
    spearman_rho_val: float | None
    kendall_tau_test: float | None
    tau_test_low: float | None
    tau_test_high: float | None
    spearman_rho_test: float | None


@dataclass(frozen=True)
class EstimateAudit(JsonRecord):
    """The audit: the policies, their finetuned accuracy, every estimate's agreement, the choice.

    ``val_vs_test_tau`` is the agreement of the finetuned validation accuracy with the finetuned
    test accuracy: how well any estimate judged on validation can rank at all on this data.
    """

    model: str
    data: str
    budget: str
    budget_metric: str
    budget_bound: float
    seed: int
    finetune_epochs: int
    finetune_lr: float
    policies: tuple[str, ...]
    costs: tuple[float, ...]
    val_accuracy_pct: tuple[float, ...]
    test_accuracy_pct: tuple[float, ...]
    val_vs_test_tau: float | None
    estimates: tuple[AuditedEstimate, ...]
    chosen: str
    how_chosen: str
    seconds: float


def _draw_policies(task_setup: Any, count: int, seed: int) -> list[tuple[tuple[int, ...], float]]:
    """``count`` distinct feasible guided samples of the space, each filled to the bound in a seeded order."""
    c = task_setup.context
    space, bound = c.space, task_setup.bound
    rng = np.random.default_rng(seed)
    out: dict[tuple[int, ...], float] = {}
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count:
            raise InvalidInputError(
                f"only {len(out)} distinct policies within {task_setup.metric} <= {bound:.4g} in {attempts - 1} "
                f"draws; ask for fewer policies or a looser budget"
            )
        genome = space.canonical(space.sample(rng))
        if c.cost_of(space.build(genome, num_classes=1)) > bound:
            continue
        order = [int(i) for i in rng.permutation(len(genome))]
        filled, result = fill_budget(
            genome,
            space.num_choices,
            lambda g: c.cost_of(space.build(g, num_classes=1)),
            bound,
            order,
            direction=-1,
        )
        out.setdefault(tuple(filled), result.cost_after)
    return list(out.items())


def _load_progress(path: Path, header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or json.loads(lines[0]) != header:
        raise InvalidInputError(
            f"{path} holds an audit with other settings; choose another --out or pass --overwrite"
        )
    return {row["policy"]: row for row in map(json.loads, lines[1:]) if row}


def audit_estimates(
    model: str | Any,
    data: str | DatasetSplits,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    estimates: Sequence[str] = ("bn", "bn-fidelity", "kd", "kd-fidelity"),
    policies: int = 20,
    noise_policies: int = 5,
    repeats: int = 3,
    settings: SearchSettings | None = None,
    options: PruneOptions | None = None,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    overwrite: bool = False,
    **fields: Any,
) -> EstimateAudit:
    """Measure how well each estimate of ``estimates`` ranks pruning policies at ``budget``.

    Args:
        model, data, budget: as :func:`auto_prune` (a ``macs`` or ``bytes`` budget keeps the policies
            exactly at equal cost).
        out_dir: gets ``estimate_audit.json``, ``estimate_audit.txt`` and ``audit_progress.jsonl``
            (one line per finished policy; an interrupted audit resumes from it). None writes nothing.
        estimates: names from :data:`ESTIMATES`.
        policies: seeded policies drawn, scored and finetuned (at least 5).
        noise_policies, repeats: the first ``noise_policies`` policies get each estimate ``repeats``
            times with other image draws.
        settings, options, model_config, width, **fields: as :func:`auto_prune` (``seed`` draws the
            policies, ``finetune_epochs`` is the identical finetune every policy gets).
        overwrite: start again in a directory that holds another audit.
    """
    from slimforge.estimators import bootstrap_correlation, kendall_tau
    from slimforge.training import accuracy

    settings, options = apply_fields(
        fields, settings or SearchSettings(), options or PruneOptions(), what="audit_estimates"
    )
    check_count("policies", policies, 5)
    configs = {name: ESTIMATES.get(name) for name in estimates}
    budget = parse_budget(budget, PRUNE_BUDGET_KEYS, what="the estimate audit", default_key="latency")
    out = None if out_dir is None else Path(out_dir)
    header = {
        "model": str(model),
        "budget": budget.text,
        "seed": settings.seed,
        "policies": policies,
        "finetune_epochs": settings.finetune_epochs,
        "finetune_lr": settings.finetune_lr,
        "estimates": {k: v.to_dict() for k, v in configs.items()},
        "noise": [noise_policies, repeats],
    }
    progress_path = None if out is None else out / "audit_progress.jsonl"
    if progress_path is not None and overwrite and progress_path.is_file():
        progress_path.unlink()
    done = {} if progress_path is None else _load_progress(progress_path, header)
    if progress_path is not None and not progress_path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        progress_path.write_text(json.dumps(header) + "\n", encoding="utf-8")
    start = time.perf_counter()
    task = PruneTask(model, data, options, model_config=model_config, width=width)
    setup = task.setup(budget, settings)
    if setup.problem is None:
        raise InvalidInputError(
            f"budget {budget.text} cannot be met by any policy; see slimforge compress --auto prune"
        )
    c = setup.context
    drawn = _draw_policies(setup, policies, settings.seed)
    rows = []
    for k, (genome, cost) in enumerate(drawn):
        key = c.space.to_string(genome)
        if key not in done:
            row: dict[str, Any] = {"policy": key, "cost": cost, "estimates": {}}
            for name, config in configs.items():
                tick = time.perf_counter()
                noise = estimate_noise(
                    lambda g=genome: c.space.build(g, num_classes=1),
                    c.splits,
                    config,
                    settings.seed,
                    repeats=repeats if k < noise_policies else 1,
                    teacher=c.base if config.needs_teacher else None,
                )
                row["estimates"][name] = {
                    **noise.to_dict(),
                    "seconds": (time.perf_counter() - tick) / len(noise.values_pct),
                }
            net = c.space.build(genome, num_classes=c.splits.num_classes)
            finetune_model(net, c.splits, **settings.train)
            row["val"] = accuracy(net, c.splits.val)
            row["test"] = accuracy(net, c.splits.test) if c.splits.test is not None else float("nan")
            if progress_path is not None:
                with progress_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
            done[key] = row
        rows.append(done[key])
    val = [r["val"] for r in rows]
    test = [r["test"] for r in rows]
    audited = []
    for name, config in configs.items():
        per = [r["estimates"][name] for r in rows]
        scores = [p["values_pct"][0] for p in per]
        noisy = per[: max(1, noise_policies)]
        bv = bootstrap_correlation(name, scores, val, seed=settings.seed)
        bt = bootstrap_correlation(name, scores, test, seed=settings.seed)
        audited.append(
            AuditedEstimate(
                name=name,
                config=config,
                scores_pct=tuple(scores),
                seconds_per_policy=float(np.mean([p["seconds"] for p in per])),
                spread_pct=float(np.std(scores, ddof=1)),
                noise_std_pct=float(np.mean([p["std_pct"] for p in noisy])),
                draw_std_pct=float(np.mean([p["draw_std_pct"] for p in noisy])),
                sampling_se_pct=float(np.mean([p["sampling_se_pct"] for p in noisy])),
                kendall_tau_val=bv.kendall_tau,
                tau_val_low=bv.tau_low,
                tau_val_high=bv.tau_high,
                spearman_rho_val=bv.spearman_rho,
                kendall_tau_test=bt.kendall_tau,
                tau_test_low=bt.tau_low,
                tau_test_high=bt.tau_high,
                spearman_rho_test=bt.spearman_rho,
            )
        )
    ranked = sorted(audited, key=lambda a: -(a.kendall_tau_val if a.kendall_tau_val is not None else -2.0))
    tau = kendall_tau(val, test)
    record = EstimateAudit(
        model=c.source.label,
        data=str(c.splits.spec),
        budget=budget.text,
        budget_metric=setup.metric,
        budget_bound=setup.bound,
        seed=settings.seed,
        finetune_epochs=settings.finetune_epochs,
        finetune_lr=settings.finetune_lr,
        policies=tuple(r["policy"] for r in rows),
        costs=tuple(float(r["cost"]) for r in rows),
        val_accuracy_pct=tuple(val),
        test_accuracy_pct=tuple(test),
        val_vs_test_tau=None if not np.isfinite(tau) else float(tau),
        estimates=tuple(audited),
        chosen=ranked[0].name,
        how_chosen="the highest Kendall tau against the finetuned validation accuracy (test reported, not used)",
        seconds=time.perf_counter() - start,
    )
    if out is not None:
        from slimforge.io import atomic_write_text

        atomic_write_text(out / "estimate_audit.json", record.to_json() + "\n")
        atomic_write_text(out / "estimate_audit.txt", format_estimate_audit(record) + "\n")
    return record


def _f(value: float | None, fmt: str = "+.2f") -> str:
    return "n/a" if value is None else format(value, fmt)


def format_estimate_audit(audit: EstimateAudit) -> str:
    """The audit as a table: each estimate's cost, noise, signal and rank agreement."""
    lines = [
        f"estimate audit on {audit.model} ({audit.data}), budget {audit.budget} ({audit.budget_metric} <= "
        f"{audit.budget_bound:.4g}): {len(audit.policies)} seeded policies at the budget, each finetuned "
        f"{audit.finetune_epochs} epoch(s) (lr {audit.finetune_lr:g}); {audit.seconds:.0f} s",
        f"  finetuned accuracy over the policies: val {min(audit.val_accuracy_pct):.2f}-{max(audit.val_accuracy_pct):.2f}%, "
        f"test {min(audit.test_accuracy_pct):.2f}-{max(audit.test_accuracy_pct):.2f}%; val vs test tau "
        f"{_f(audit.val_vs_test_tau)}",
        "",
        f"{'estimate':<14} {'s/policy':>8} {'spread':>7} {'noise':>6} {'tau val [95% CI]':>24} {'rho val':>8} "
        f"{'tau test [95% CI]':>24} {'rho test':>8}",
    ]
    for a in audit.estimates:
        lines.append(
            f"{a.name:<14} {a.seconds_per_policy:>8.1f} {a.spread_pct:>7.2f} {a.noise_std_pct:>6.2f} "
            f"{_f(a.kendall_tau_val):>6} [{_f(a.tau_val_low)}, {_f(a.tau_val_high)}]".ljust(71)
            + f" {_f(a.spearman_rho_val):>8} {_f(a.kendall_tau_test):>6} [{_f(a.tau_test_low)}, {_f(a.tau_test_high)}]"
            f" {_f(a.spearman_rho_test):>8}"
        )
    lines += [
        "",
        f"chosen: {audit.chosen} ({audit.how_chosen})",
        "spread = sd of the estimate over the policies (signal); noise = its sd over other image draws "
        "and the sampling error of its images, on the first policies",
    ]
    return "\n".join(lines)
