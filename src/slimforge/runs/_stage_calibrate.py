"""Stage ``calibrate``: the run audits its accuracy estimator before searching with it.

A seeded calibration set of architectures is trained standalone (or looked up in a ground-truth
table), and every estimator the run has (the supernet, the zero-cost ensemble, the parameter count,
and a blend of them) is correlated with their accuracy on the validation split, each with a
bootstrap interval (:func:`slimforge.estimators.audit_estimators`). The search then uses the best
one (or the configured one) and the summary and report say which and why; a best τ below the
threshold is a warning in both.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.estimators import EstimatorAudit
from slimforge.io import JsonRecord, atomic_write_json
from slimforge.runs._context import RunContext
from slimforge.runs._stage import RunStage, data_settings
from slimforge.runs.config import ConfigError, RunConfig

__all__ = ["CalibrateOutput", "CalibrateStage", "calibration_genomes"]

#: offsets the calibration draw from the run's other seeded draws.
_SEED_OFFSET = 20_000


@dataclass(frozen=True)
class CalibrateOutput(JsonRecord):
    """The audit (None when skipped: ``skipped`` says why) and the seconds it took."""

    audit: EstimatorAudit | None = None
    skipped: str | None = None
    dir: str | None = None
    seconds: float = 0.0


def calibration_genomes(space: Any, size: int, seed: int) -> list[tuple[int, ...]]:
    """``size`` distinct canonical genomes drawn with ``seed + 20000`` (the same for every run of a seed)."""
    rng = np.random.default_rng(seed + _SEED_OFFSET)
    out: dict[tuple[int, ...], None] = {}
    for _ in range(size * 200):
        out.setdefault(tuple(space.canonical(space.sample(rng))), None)
        if len(out) == size:
            break
    return list(out)


class CalibrateStage(RunStage):
    """Train the calibration set, score it with every estimator, choose the search's accuracy estimate."""

    name = "calibrate"
    output = CalibrateOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("supernet",)

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {**data_settings(config),
                "space": asdict(config.space), "accuracy": asdict(config.accuracy),
                "batch_size": config.retrain.batch_size}

    def check(self, config: RunConfig) -> None:
        from slimforge.runs._preflight import at
        from slimforge.search import parse_proxy_weights
        from slimforge.spaces import get_space

        from slimforge.runs._stage_supernet import needs_accuracy

        cal = config.accuracy.calibration
        if cal.size == 0 or config.accuracy.source != "supernet" or not needs_accuracy(config):
            return
        space = get_space(config.space.name, **config.space.options)
        if cal.size > space.size:
            raise ConfigError(
                f"accuracy.calibration.size {cal.size} is larger than the space ({space.size} architectures); "
                f"use at most {space.size}"
            )
        at("accuracy.calibration.proxies", lambda: parse_proxy_weights(cal.proxies))
        if cal.table is not None:
            from slimforge.estimators import read_accuracy_table

            at("accuracy.calibration.table", lambda: read_accuracy_table(cal.table, space))

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return [ctx.path("calibration")]

    def _run(self, ctx: RunContext) -> CalibrateOutput:
        from slimforge.estimators import audit_estimators

        from slimforge.runs._stage_supernet import needs_accuracy

        cfg = ctx.config.accuracy.calibration
        if ctx.config.accuracy.source != "supernet":
            return CalibrateOutput(skipped=f"accuracy comes from {ctx.config.accuracy.source}, not an estimate")
        if not needs_accuracy(ctx.config):
            return CalibrateOutput(skipped="no objective needs an accuracy estimate")
        if cfg.size == 0:
            return CalibrateOutput(skipped="accuracy.calibration.size is 0: the supernet is used unaudited")
        start = time.perf_counter()
        space = ctx.space
        genomes = calibration_genomes(space, cfg.size, ctx.config.seed)
        archs = [space.to_string(g) for g in genomes]
        truth, source = self._truth(ctx, genomes, archs)
        scores = self._scores(ctx, genomes)
        prefer = None if cfg.estimator == "auto" else cfg.estimator
        audit = audit_estimators(scores, truth, archs=archs, truth_source=source, threshold=cfg.threshold,
                                 prefer=prefer, default="supernet", seed=ctx.config.seed)
        ctx.log(f"  estimator: {audit.chosen} ({audit.reason})")
        if audit.warning:
            ctx.log(f"  warning: {audit.warning}")
        return CalibrateOutput(audit, dir=ctx.rel(ctx.path("calibration")), seconds=time.perf_counter() - start)

    def _truth(self, ctx: RunContext, genomes: list[tuple[int, ...]], archs: list[str]) -> tuple[list[float], str]:
        cfg = ctx.config.accuracy.calibration
        if cfg.table is not None:
            from slimforge.estimators import read_accuracy_table

            table = read_accuracy_table(cfg.table, ctx.space)
            index = {tuple(ctx.space.canonical(g)): a for g, a in zip(table.genomes, table.accuracy)}
            return [index[g] for g in genomes], f"table {cfg.table}"
        out = []
        for i, (genome, arch) in enumerate(zip(genomes, archs)):
            path = ctx.path("calibration") / f"arch{i:03d}.json"
            record = _read(path, arch)
            if record is None:
                ctx.log(f"  calibration architecture {i + 1}/{len(genomes)}: training {cfg.epochs} epoch(s)")
                record = self._train(ctx, genome, arch, i)
                atomic_write_json(path, record)
            out.append(record["val_accuracy_pct"])
        return out, f"trained standalone for {cfg.epochs} epoch(s), validation split"

    def _train(self, ctx: RunContext, genome: tuple[int, ...], arch: str, i: int) -> dict[str, Any]:
        import torch

        from slimforge.training import TrainSettings as TrainConfig, accuracy, train_classifier

        cfg = ctx.config.accuracy.calibration
        torch.manual_seed(ctx.config.seed + _SEED_OFFSET + i)
        net = ctx.space.build(genome, num_classes=ctx.splits.num_classes)
        start = time.perf_counter()
        train_classifier(net, ctx.splits.train,
                         TrainConfig(epochs=cfg.epochs, batch_size=ctx.config.retrain.batch_size, lr=0.05,
                                     seed=ctx.config.seed),
                         progress=ctx.progress, desc=f"calibration {i + 1}", runtime=ctx.train_runtime())
        return {"arch": arch, "val_accuracy_pct": accuracy(net, ctx.splits.val, device=ctx.train_device),
                "epochs": cfg.epochs,
                "seconds": time.perf_counter() - start}

    def _scores(self, ctx: RunContext, genomes: list[tuple[int, ...]]) -> dict[str, list[float]]:
        from slimforge.search import feature_value

        return {name: [feature_value(name, m) for m in ev.evaluate_many(genomes)]
                for name, ev in estimator_evaluators(ctx).items()}


def estimator_evaluators(ctx: RunContext) -> dict[str, Any]:
    """The evaluator behind every audited estimator: the run's supernet, the zero-cost ensemble, #params."""
    from slimforge.search import make_evaluator

    cfg = ctx.config
    return {
        "supernet": make_evaluator(
            "supernet_accuracy", ctx.space, checkpoint=str(ctx.path(ctx.output("supernet").dir)), data=cfg.data,
            split="val", val_fraction=cfg.val_fraction, bn_images=cfg.accuracy.bn_images,
            eval_images=cfg.accuracy.eval_images, finetune_steps=cfg.accuracy.finetune_steps, seed=cfg.seed,
            device=ctx.supernet_device,
        ),
        "zero_cost": make_evaluator(
            "proxy", ctx.space, proxies=cfg.accuracy.calibration.proxies, data=cfg.data, seed=cfg.seed,
            num_classes=ctx.splits.num_classes,
        ),
        "num_params": make_evaluator("num_params", ctx.space, num_classes=ctx.splits.num_classes),
    }


def _read(path: Path, arch: str) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("arch") == arch and isinstance(record.get("val_accuracy_pct"), float)
    return record if ok and math.isfinite(record["val_accuracy_pct"]) else None
