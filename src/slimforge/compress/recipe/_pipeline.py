"""``compress``: run a recipe's stages in order, measure after each, keep the best model within budget."""

from __future__ import annotations

import copy
import dataclasses
import functools
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.compress._rebuild import save_compressed
from slimforge.compress.recipe._gate import GateConfig, Gatekeeper
from slimforge.compress.recipe._measure import StageResult, measure_latencies, measure_stage
from slimforge.compress.recipe._registry import build_stage
from slimforge.compress.recipe._spec import parse_recipe
from slimforge.compress.recipe._stage import Stage, StageContext
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.training import TrainRuntime, TrainSettings, resolve_model

__all__ = ["CompressionReport", "compress", "parse_stages"]


@dataclasses.dataclass
class _Snapshot:
    """What a stage may change in the pipeline's working state, to put back when the gate drops it."""

    model: nn.Module
    persistent_hooks: list
    teacher_hooks: list
    deployed_onnx: Path | None
    huffman: bool

    @classmethod
    def take(cls, ctx: StageContext) -> _Snapshot:
        return cls(copy.deepcopy(ctx.model), list(ctx.persistent_hooks), list(ctx.teacher_hooks),
                   ctx.deployed_onnx, ctx.huffman)

    def restore(self, ctx: StageContext) -> None:
        ctx.model = self.model
        ctx.persistent_hooks[:] = self.persistent_hooks
        ctx.teacher_hooks[:] = self.teacher_hooks
        ctx.deployed_onnx = self.deployed_onnx
        ctx.huffman = self.huffman


@dataclass(frozen=True)
class CompressionReport(JsonRecord):
    """Everything ``compression.json`` holds: the chain's rows, side-by-side rows, the budget verdict.

    ``stages[0]`` is the model before compression; ``kept_stage`` indexes the row whose model was
    saved (the last within the accuracy budget that the measured ``gate`` did not drop). ``comparisons`` are the same measurements for the
    tools slimforge wraps, used directly (torch-pruning with the same ratio, ONNX Runtime's INT8
    quantizer with its defaults). ``details`` holds each stage's extras by stage: the pruning result,
    the INT8 per-layer sensitivity report and the layers kept in float, the factorised layers.
    """

    model: str
    data: str
    recipe: str
    input_shape: tuple[int, ...]
    finetune_epochs: int
    finetune_lr: float
    max_accuracy_drop_pct: float | None
    budget_met: bool
    kept_stage: int
    message: str
    stages: tuple[StageResult, ...]
    comparisons: tuple[StageResult, ...]
    latency_conditions: str
    macs_note: str
    details: dict[str, Any]
    gate: GateConfig = GateConfig()


def parse_stages(recipe: str) -> list[Stage]:
    """Parse and validate a recipe into stages (nothing runs); errors name the bad stage."""
    stages = [build_stage(spec) for spec in parse_recipe(recipe)]
    for i, stage in enumerate(stages):
        if stage.changes_structure and any(s.constrains_weights for s in stages[:i]):
            first = next(s for s in stages[:i] if s.constrains_weights)
            raise InvalidInputError(
                f"recipe {recipe!r}: {stage.text!r} changes layer shapes after {first.text!r} fixed weights; "
                f"put {stage.text!r} first"
            )
        if stage.final and any(not later.accounting_only for later in stages[i + 1 :]):
            raise InvalidInputError(
                f"recipe {recipe!r}: {stage.text!r} produces the final INT8 model and must be the last stage "
                "(only huffman may follow it)"
            )
    return stages


def compress(
    model: str | nn.Module,
    data: str | DatasetSplits,
    recipe: str,
    out_dir: str | Path,
    *,
    model_config: Mapping[str, Any] | None = None,
    width: float | None = None,
    finetune_epochs: int = 5,
    finetune_lr: float = 0.01,
    batch_size: int = 64,
    max_accuracy_drop: float | None = None,
    calibration_images: int = 128,
    seed: int = 0,
    val_fraction: float = 0.1,
    compare: bool = False,
    latency_time_cap_s: float = 10.0,
    gate: GateConfig | None = None,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = False,
    runtime: TrainRuntime | None = None,
) -> CompressionReport:
    """Compress ``model`` by ``recipe`` on ``data``, measure every stage, and write ``out_dir``.

    Args:
        model: a zoo name, a saved model directory, or an ``nn.Module`` (then give ``model_config``);
            never changed (a module is copied first).
        data: a data spec (``npz:FILE``, ``digits``, ...) or loaded :class:`slimforge.data.DatasetSplits`;
            its validation part decides the budget and the fallbacks, its test part is reported.
        recipe: stages, e.g. ``"prune:l1:0.5,distill:teacher=self,quantize:int8"``.
        out_dir: gets ``model.onnx`` (the kept result), ``model/`` (its PyTorch state_dict and JSON
            config, reloadable with :func:`slimforge.io.load_model`), ``stages/`` (each
            stage's ONNX), ``compression.json`` and ``compression.txt``.
        model_config: the config that rebuilds an ``nn.Module`` passed as ``model``.
        width: width multiplier for a zoo name.
        finetune_epochs: epochs of each finetuning run.
        finetune_lr: peak learning rate of finetuning (cosine to 0).
        batch_size: finetuning batch size.
        max_accuracy_drop: allowed drop of validation accuracy (points) from the input model. Every
            stage runs (a later one, such as distillation, may win back what an earlier one lost);
            the last model within the budget is kept, and the report says when the final one is not.
        calibration_images: real training images that calibrate INT8.
        seed: seeds the split, finetuning, calibration draws and random criteria.
        val_fraction: share of the training images held out for validation.
        compare: add rows for torch-pruning and ONNX Runtime's quantizer used directly.
        latency_time_cap_s: seconds at most of timed runs per model for the final table, spread over
            5 interleaved rounds.
        gate: the measured gate (:class:`GateConfig`; default: latency on ``local-cpu``, 1 thread):
            every stage that changes the exported graph is timed against its input on the gate's
            device and dropped when slower beyond the tolerance (pruning first picks its channel
            rounding by measurement); ``objective="size"`` keeps a slower but smaller stage and says so.
        device: a :class:`slimforge.hardware.devices.Device` object replacing ``gate.device``.
        overwrite: replace an existing ``out_dir``.
        progress: progress bars on stderr.
        runtime: where and how finetuning runs (:class:`slimforge.training.TrainRuntime`, e.g. a
            ``train_device`` GPU); None trains on the CPU.
    """
    from slimforge.data import load_dataset
    from slimforge.hardware import MACS_NOTE

    stages = parse_stages(recipe)
    if max_accuracy_drop is not None and not max_accuracy_drop >= 0:
        raise InvalidInputError(f"max accuracy drop {max_accuracy_drop!r} must be >= 0 points")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InvalidInputError(
            f"{out_dir} already exists and is not empty; choose another --out or pass --overwrite"
        )
    splits = (
        data if isinstance(data, DatasetSplits) else load_dataset(data, val_fraction=val_fraction, seed=seed)
    )
    source = resolve_model(
        model, num_classes=splits.num_classes, width=width, config=dict(model_config or {}) or None
    )
    input_shape = (1, *splits.input_shape)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    work_dir = out_dir / ".work"
    original = copy.deepcopy(source.model).eval()
    ctx = StageContext(
        model=source.model.eval(),
        original=original,
        original_config=source.config,
        input_shape=input_shape,
        splits=splits,
        finetune=TrainSettings(epochs=finetune_epochs, batch_size=batch_size, lr=finetune_lr, seed=seed),
        work_dir=work_dir,
        seed=seed,
        calibration_images=calibration_images,
        progress=progress,
        runtime=runtime,
    )
    gatekeeper = Gatekeeper(gate or GateConfig(), input_shape, device=device, seed=seed)
    if gatekeeper.config.enabled:
        ctx.gate = gatekeeper
    measure = functools.partial(
        measure_stage, out_dir=out_dir, splits=splits, input_shape=input_shape, compact=True
    )
    details: dict[str, Any] = {}
    notes = (
        [] if source.trained else ["the input model is untrained (a zoo name): train it first with --train"]
    )
    row = measure(
        ctx.model,
        index=0,
        stage="original",
        kind="original",
        notes=notes,
        packed_bytes=_packed_bytes(ctx, force=True),
    )
    rows = [dataclasses.replace(row, decision="original")]
    if max_accuracy_drop is not None:
        ctx.accuracy_floor_pct = row.val_accuracy_pct - max_accuracy_drop
    kept = (0, copy.deepcopy(ctx.model), out_dir / row.onnx_file, [])
    history: list[str] = []
    current = 0  # the row whose model ctx.model is now (a dropped stage's input goes on)
    for i, stage in enumerate(stages, start=1):
        before = _Snapshot.take(ctx)
        start = time.perf_counter()
        outcome = stage.apply(ctx)
        seconds = time.perf_counter() - start
        row = measure(
            ctx.model,
            index=i,
            stage=stage.text,
            kind=stage.kind.replace(":", "_"),
            deployed_onnx=ctx.deployed_onnx,
            packed_bytes=_packed_bytes(ctx),
            seconds=seconds,
            notes=outcome.notes,
            accuracy_floor_pct=ctx.accuracy_floor_pct,
        )
        base = rows[current]
        verdict = gatekeeper.judge(
            stage, out_dir / base.onnx_file, out_dir / row.onnx_file, base.onnx_bytes, row.onnx_bytes
        )
        row = dataclasses.replace(
            row, decision=verdict.decision, decision_reason=verdict.reason, applied_to=current
        )
        rows.append(row)
        if outcome.details:
            details[f"{i:02d} {stage.text}"] = outcome.details
        if verdict.decision == "dropped":
            before.restore(ctx)
            continue
        current = i
        history.append(stage.text)
        if row.within_budget:
            kept = (i, copy.deepcopy(ctx.model), out_dir / row.onnx_file, list(history))
    budget_met, message = _verdict(rows, kept[0], max_accuracy_drop)
    comparisons = _comparisons(stages, ctx, out_dir) if compare else []
    measured, conditions = measure_latencies(
        [*rows, *comparisons], out_dir, input_shape, gate=gatekeeper, time_cap_s=latency_time_cap_s
    )
    rows, comparisons = measured[: len(rows)], measured[len(rows) :]
    index, kept_model, kept_onnx, kept_history = kept
    shutil.copyfile(kept_onnx, out_dir / "model.onnx")
    save_compressed(kept_model, source.config, kept_history, input_shape, out_dir / "model")
    report = CompressionReport(
        model=source.label,
        data=str(splits.spec),
        recipe=recipe,
        input_shape=input_shape,
        finetune_epochs=finetune_epochs,
        finetune_lr=finetune_lr,
        max_accuracy_drop_pct=max_accuracy_drop,
        budget_met=budget_met,
        kept_stage=index,
        message=message,
        stages=tuple(rows),
        comparisons=tuple(comparisons),
        latency_conditions=conditions,
        macs_note=MACS_NOTE,
        details=details,
        gate=gatekeeper.settings(),
    )
    (out_dir / "compression.json").write_text(report.to_json() + "\n", encoding="utf-8")
    from slimforge.compress.recipe._report import format_report

    (out_dir / "compression.txt").write_text(format_report(report) + "\n", encoding="utf-8")
    shutil.rmtree(work_dir, ignore_errors=True)
    return report


def _verdict(rows: list[StageResult], kept: int, max_drop: float | None) -> tuple[bool, str]:
    """Whether the final model meets the budget, and the sentence that says what was kept."""
    applied = [r for r in rows if r.decision != "dropped"]
    dropped = [r for r in rows if r.decision == "dropped"]
    gate = (
        f"; dropped by the measured gate (slower than their input): {', '.join(r.stage for r in dropped)}"
        if dropped
        else ""
    )
    final = applied[-1]
    if max_drop is None:
        return True, f"{len(applied) - 1} of {len(rows) - 1} stage(s) kept; no accuracy budget{gate}"
    floor = rows[0].val_accuracy_pct - max_drop
    if final.within_budget:
        return True, (
            f"{len(applied) - 1} of {len(rows) - 1} stage(s) kept; the final model is within the accuracy "
            f"budget (validation {final.val_accuracy_pct:.2f}% >= {floor:.2f}%){gate}"
        )
    what = f"stage {kept} ({rows[kept].stage})" if kept else "stage 0 (the original)"
    return False, (
        f"accuracy budget missed: the final stage ({final.stage}) has validation accuracy "
        f"{final.val_accuracy_pct:.2f}%, below {floor:.2f}% (original {rows[0].val_accuracy_pct:.2f}% - {max_drop:g}); "
        f"kept the model after {what}, the last within the budget{gate}"
    )


def _packed_bytes(ctx: StageContext, *, force: bool = False) -> int | None:
    from slimforge.compress.coding import has_packable_weights, packed_size

    if ctx.deployed_onnx is not None or not (force or ctx.huffman or has_packable_weights(ctx.model)):
        return None
    return packed_size(ctx.model, huffman=ctx.huffman)


def _comparisons(stages: list[Stage], ctx: StageContext, out_dir: Path) -> list[StageResult]:
    """torch-pruning and ONNX Runtime's quantizer used directly on the original, as a user would."""
    from slimforge.compress.recipe._direct import direct_int8, direct_prune

    rows = []
    prune = next((s for s in stages if s.name == "prune"), None)
    if prune is not None:
        rows.append(direct_prune(prune, ctx, out_dir, index=len(rows)))
    if any(s.name == "quantize:int8" for s in stages):
        rows.append(direct_int8(ctx, out_dir, index=len(rows)))
    return rows
