"""Stage ``compress``: the searched per-layer policy (``compress.auto``), then the recipe, measured.

Every recipe stage that changes the exported graph is timed against its input on the model's own
device (the first device whose search chose it) and dropped when slower: the measured gate of
:func:`slimforge.compress.compress`. A table device answers for architectures, not files, so a
model chosen only for table devices is gated on this machine's ONNX Runtime, and the output says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slimforge.runs._context import RunContext
from slimforge.runs._outputs import AutoPolicy, CompressedModel, CompressOutput
from slimforge.runs._stage import RunStage, data_settings
from slimforge.runs.config import DeviceConfig, RunConfig
from slimforge.runs.layout import model_dir

__all__ = ["CompressStage", "gate_device"]

#: ``compress.auto`` -> (function name in slimforge.compress, the JSON file it writes).
_AUTO = {"prune": ("auto_prune", "auto_prune.json"), "bits": ("auto_bits", "auto_bits.json")}


def _no_recipe(recipe: str) -> bool:
    return recipe.strip().lower() in ("", "none")


def gate_device(config: RunConfig, devices: tuple[str, ...]) -> DeviceConfig:
    """The device a model's compression is timed on: its first measured device, else local-cpu."""
    for name in devices:
        d = config.device(name)
        if d.cost != "table":
            return d
    return DeviceConfig(name="local", spec="local-cpu", cost="measure", threads=config.measure.threads)


class CompressStage(RunStage):
    """Compress each retrained model: the searched policy, then the recipe under the measured gate."""

    name = "compress"
    output = CompressOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("retrain",)

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {**data_settings(config),
                "compress": asdict(config.compress), "accuracy_bn_images": config.accuracy.bn_images,
                "time_cap_s": config.measure.time_cap_s, "devices": [asdict(d) for d in config.devices]}

    def check(self, config: RunConfig) -> None:
        from slimforge.runs._preflight import at

        if not _no_recipe(config.compress.recipe):
            from slimforge.compress import parse_stages

            at("compress.recipe", lambda: parse_stages(config.compress.recipe))
        if config.compress.auto is not None:
            from slimforge.compress import parse_budget
            from slimforge.compress import BITS_BUDGET_KEYS, PRUNE_BUDGET_KEYS

            keys = PRUNE_BUDGET_KEYS if config.compress.auto == "prune" else BITS_BUDGET_KEYS
            at("compress.budget",
               lambda: parse_budget(config.compress.budget, keys, what=f"compress.auto {config.compress.auto}"))

    def artifacts(self, ctx: RunContext) -> list[Path]:
        models = ctx.path("models")
        return sorted([*models.glob("*/compressed"), *models.glob("*/auto")])

    def _run(self, ctx: RunContext) -> CompressOutput:
        cfg = ctx.config.compress
        models = []
        for m in ctx.output("retrain").models:
            source, auto = ctx.path(m.dir), None
            if cfg.auto is not None:
                source, auto = self._auto_policy(ctx, m.name, source)
            entry = CompressedModel(name=m.name, source=ctx.rel(source), auto=auto,
                                    test_accuracy_pct=None if auto else m.accuracy_pct)
            if not _no_recipe(cfg.recipe):
                entry = self._recipe(ctx, m, source, entry)
            models.append(entry)
        return CompressOutput(tuple(models), recipe=cfg.recipe, auto=cfg.auto, budget=cfg.budget)

    def _recipe(self, ctx: RunContext, m: Any, source: Path, entry: CompressedModel) -> CompressedModel:
        from slimforge.compress import CompressionReport, GateConfig, compress
        from slimforge.runs._stage_search import make_device

        cfg = ctx.config.compress
        device = gate_device(ctx.config, m.devices)
        out = model_dir(ctx.run_dir, m.name) / "compressed"
        report_path = out / "compression.json"
        if report_path.is_file():
            report = CompressionReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
        else:
            ctx.log(f"  compressing {m.name}: {cfg.recipe} (each stage timed on {device.spec})")
            report = compress(
                str(source),
                ctx.splits,
                cfg.recipe,
                out,
                finetune_epochs=cfg.finetune_epochs,
                max_accuracy_drop=cfg.max_accuracy_drop,
                calibration_images=cfg.calibration_images,
                seed=ctx.config.seed,
                latency_time_cap_s=ctx.config.measure.time_cap_s,
                gate=GateConfig(objective=cfg.gate, device=device.spec, threads=device.threads,
                                tolerance=cfg.gate_tolerance),
                device=make_device(device) if cfg.gate != "none" else None,
                overwrite=True,
                progress=ctx.progress,
                runtime=ctx.train_runtime(),
            )
        kept = report.stages[report.kept_stage]
        dropped = tuple(r.stage for r in report.stages if r.decision == "dropped")
        for r in report.stages:
            if r.decision == "dropped":
                ctx.log(f"  {m.name}: dropped {r.stage}: {r.decision_reason}")
        return CompressedModel(
            name=m.name,
            source=entry.source,
            dir=ctx.rel(out),
            report=ctx.rel(report_path),
            auto=entry.auto,
            gate_device=device.spec if cfg.gate != "none" else None,
            kept_stage=report.kept_stage,
            dropped=dropped,
            budget_met=report.budget_met,
            message=report.message,
            test_accuracy_pct=kept.test_accuracy_pct if kept.test_accuracy_pct is not None else kept.val_accuracy_pct,
        )

    def _auto_policy(self, ctx: RunContext, name: str, source: Path) -> tuple[Path, AutoPolicy]:
        """Search a per-layer policy for one model (once); returns the finetuned model and the record."""
        import slimforge.compress as compress_api

        cfg = ctx.config.compress
        function, result_file = _AUTO[cfg.auto]
        options: dict[str, Any] = {"estimate": compress_api.EstimateConfig(recal_images=ctx.config.accuracy.bn_images)}
        if cfg.auto == "prune":
            options["latency_time_cap_s"] = ctx.config.measure.time_cap_s
        out = model_dir(ctx.run_dir, name) / "auto"
        if not (out / result_file).is_file():
            ctx.log(f"  searching a per-layer {cfg.auto} policy for {name} under {cfg.budget}")
            getattr(compress_api, function)(
                str(source),
                ctx.splits,
                cfg.budget,
                out,
                search_budget=cfg.search_budget,
                seed=ctx.config.seed,
                finetune_epochs=cfg.finetune_epochs,
                overwrite=True,
                progress=ctx.progress,
                **options,
            )
        return out / "searched", AutoPolicy(cfg.auto, cfg.budget, ctx.rel(out), ctx.rel(out / result_file))
