"""Stages ``retrain`` and ``reference``: train the chosen architectures, and the hand-designed references.

``finetune`` starts from the supernet's weights and, with ``distill``, learns from the supernet's
largest sub-network as a teacher (in-place distillation, Yu et al. 2020, BigNAS); ``scratch``
trains the standalone network from a fresh initialisation. The references (MobileNetV2 at a few
widths by default) are trained from scratch for as many epochs as the chosen models have seen in
all (supernet + retraining), so that "similar accuracy" compares like with like. They are a stage
of their own, so a changed retraining setting does not retrain them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slimforge.io import atomic_write_json
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._outputs import ReferenceModel, ReferenceOutput, RetrainOutput, TrainedModel
from slimforge.runs._stage import RunStage, data_settings
from slimforge.runs.config import RunConfig
from slimforge.runs.layout import model_dir, reference_dir

__all__ = ["ReferenceStage", "RetrainStage", "reference_epochs"]

_RECORD = "train.json"


def _train_config(config: RunConfig, epochs: int, lr: float) -> Any:
    from slimforge.training import TrainSettings as TrainConfig

    return TrainConfig(epochs=epochs, batch_size=config.retrain.batch_size, lr=lr, seed=config.seed)


def _finished(path: Path, record_type: type) -> Any:
    """The record of a model finished before (a resumed stage), or None if it must be trained."""
    record = path / _RECORD
    if not ((path / "model.json").is_file() and record.is_file()):
        return None
    try:
        return record_type.from_dict(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None  # half-written by an older slimforge or edited: train it again


def _save(out: Path, net: Any, config: dict[str, Any], record: Any) -> None:
    from slimforge.io import save_model

    # The model is renamed into place whole; train.json last marks it finished for a resume.
    save_model(net, config, out, overwrite=True)
    atomic_write_json(out / _RECORD, record.to_dict())


def _own_teacher(ctx: RunContext) -> Any:
    """The user's own trained teacher (``retrain.teacher``), in eval mode."""
    from slimforge.io import open_model

    cfg = ctx.config.retrain
    source = open_model(cfg.teacher, num_classes=ctx.splits.num_classes, weights=cfg.teacher_weights)
    if not source.trained:
        raise StageError(
            f"retrain.teacher {cfg.teacher!r} is untrained: give a saved model directory, or its weights as "
            "retrain.teacher_weights"
        )
    return source.model.eval()


def _teacher(ctx: RunContext, supernet: Any) -> Any:
    """The supernet's largest sub-network, with BN statistics re-estimated on training images."""
    from slimforge.data import sample_batch
    from slimforge.supernet import recalibrate_bn
    from slimforge.supernet.sandwich import size_extremes

    largest, _ = size_extremes(ctx.space)
    teacher = supernet.extract(largest).eval()
    images = sample_batch(ctx.splits.train, min(ctx.config.accuracy.bn_images or 256, len(ctx.splits.train)),
                          seed=ctx.config.seed)[0]
    recalibrate_bn(teacher, images)
    return teacher


class RetrainStage(RunStage):
    """Train every chosen architecture once (duplicates across devices share one model)."""

    name = "retrain"
    output = RetrainOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("select", "supernet")

    def settings(self, config: RunConfig) -> dict[str, Any]:
        retrain = {k: v for k, v in asdict(config.retrain).items() if not k.startswith("reference")}
        return {**data_settings(config),
                "space": asdict(config.space), "accuracy": asdict(config.accuracy), "retrain": retrain}

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return sorted(ctx.path("models").glob("*/trained"))

    def _run(self, ctx: RunContext) -> RetrainOutput:
        cfg = ctx.config.retrain
        supernet = teacher = None
        models: list[TrainedModel] = []
        devices: dict[str, list[str]] = {}
        for c in ctx.output("select").chosen:
            if c.arch in devices:
                devices[c.arch].append(c.device)
                continue
            devices[c.arch] = [c.device]
            out = model_dir(ctx.run_dir, c.name) / "trained"
            record = _finished(out, TrainedModel)
            if record is None:
                if cfg.mode == "finetune" and supernet is None and ctx.config.accuracy.source == "supernet":
                    from slimforge.supernet import load_supernet

                    supernet = load_supernet(ctx.path(ctx.output("supernet").dir))[0]
                    teacher = _teacher(ctx, supernet) if cfg.distill and cfg.teacher is None else None
                if cfg.teacher is not None and teacher is None:
                    teacher = _own_teacher(ctx)
                ctx.log(f"  retraining {c.name} ({cfg.mode}, {cfg.epochs} epochs)")
                record = self._train(ctx, c, out, supernet, teacher)
            models.append(record)
        if not ctx.dist.is_main:
            return RetrainOutput(())  # under torchrun rank 0 alone evaluates and records
        return RetrainOutput(tuple(
            TrainedModel.from_dict({**m.to_dict(), "devices": devices[m.arch]}) for m in models
        ))

    def _train(self, ctx: RunContext, chosen: Any, out: Path, supernet: Any, teacher: Any) -> TrainedModel | None:
        from slimforge.compress import DistillHook
        from slimforge.training import accuracy, train_classifier

        cfg = ctx.config.retrain
        splits = ctx.splits
        if cfg.mode == "finetune":
            net = supernet.extract(tuple(chosen.genome)).train()
        else:
            net = ctx.space.build(tuple(chosen.genome), num_classes=splits.num_classes)
        hooks = [DistillHook(teacher, input_shape=ctx.input_shape)] if teacher is not None else []
        start = time.perf_counter()
        result = train_classifier(
            net, splits.train, _train_config(ctx.config, cfg.epochs, cfg.lr), hooks=hooks,
            progress=ctx.progress, desc=f"retrain {chosen.name}", runtime=ctx.train_runtime(), dist=ctx.dist,
        )
        if not ctx.dist.is_main:
            return None
        config = {
            "builder": "space",
            "space": ctx.config.space.name,
            "space_options": dict(ctx.config.space.options),
            "arch": chosen.arch,
            "kwargs": {"num_classes": splits.num_classes},
            "input_shape": list(ctx.input_shape),
        }
        metrics = chosen.metrics
        estimated = metrics.get("accuracy", 100.0 - metrics["error"] if "error" in metrics else None)
        test = splits.test if splits.test is not None else splits.val
        record = TrainedModel(
            name=chosen.name,
            arch=chosen.arch,
            dir=ctx.rel(out),
            devices=(chosen.device,),
            estimated_accuracy_pct=estimated,
            accuracy_pct=accuracy(net, test, device=ctx.train_device),
            val_accuracy_pct=accuracy(net, splits.val, device=ctx.train_device),
            accuracy_split="test" if splits.test is not None else "val",
            mode=cfg.mode,
            distilled=teacher is not None,
            epochs=cfg.epochs,
            seconds=time.perf_counter() - start,
            loss_per_epoch=tuple(result.loss_per_epoch),
        )
        _save(out, net, config, record)
        return record


def reference_epochs(config: RunConfig) -> int:
    """Epochs of the references: as set, else as many as the chosen models saw in all."""
    cfg = config.retrain
    return cfg.reference_epochs if cfg.reference_epochs is not None else config.supernet.epochs + cfg.epochs


class ReferenceStage(RunStage):
    """Train the hand-designed reference networks (``retrain.reference`` at ``reference_widths``)."""

    name = "reference"
    output = ReferenceOutput

    def settings(self, config: RunConfig) -> dict[str, Any]:
        cfg = config.retrain
        return {**data_settings(config),
                "reference": list(cfg.reference), "widths": list(cfg.reference_widths),
                "epochs": reference_epochs(config), "batch_size": cfg.batch_size}

    def check(self, config: RunConfig) -> None:
        from slimforge.runs._preflight import at
        from slimforge.zoo import MODELS

        from slimforge.io import is_reference

        for i, name in enumerate(config.retrain.reference):
            if not is_reference(name):
                at(f"retrain.reference[{i}]", lambda n=name: MODELS.get(n))

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return sorted(ctx.path("references").glob("*/trained"))

    def _run(self, ctx: RunContext) -> ReferenceOutput:
        from slimforge.io import is_reference

        models = []
        for name in ctx.config.retrain.reference:
            for width in (None,) if is_reference(name) else ctx.config.retrain.reference_widths:
                label = _reference_label(name, width)
                out = reference_dir(ctx.run_dir, label) / "trained"
                record = _finished(out, ReferenceModel)
                if record is None:
                    ctx.log(f"  training reference {name}" + ("" if width is None else f" width {width:g}"))
                    record = self._train(ctx, name, width, label, out)
                models.append(record)
        if not ctx.dist.is_main:
            return ReferenceOutput(())  # under torchrun rank 0 alone evaluates and records
        return ReferenceOutput(tuple(models))

    def _train(
        self, ctx: RunContext, name: str, width: float | None, label: str, out: Path
    ) -> ReferenceModel | None:
        from slimforge.io import open_model
        from slimforge.training import accuracy, train_classifier

        splits = ctx.splits
        epochs = reference_epochs(ctx.config)
        source = open_model(name, num_classes=splits.num_classes, width=width)
        config = {**source.config, "input_shape": list(ctx.input_shape)}
        net = source.model
        start = time.perf_counter()
        train_classifier(net, splits.train, _train_config(ctx.config, epochs, 0.05), progress=ctx.progress,
                         desc=f"train {label}", runtime=ctx.train_runtime(), dist=ctx.dist)
        if not ctx.dist.is_main:
            return None
        test = splits.test if splits.test is not None else splits.val
        record = ReferenceModel(
            name=label,
            model=name,
            width=1.0 if width is None else width,
            dir=ctx.rel(out),
            accuracy_pct=accuracy(net, test, device=ctx.train_device),
            val_accuracy_pct=accuracy(net, splits.val, device=ctx.train_device),
            epochs=epochs,
            seconds=time.perf_counter() - start,
        )
        _save(out, net, config, record)
        return record


def _reference_label(name: str, width: float | None) -> str:
    """``ref-mobilenet_v2-0.35`` for a zoo model, ``ref-TinyCNN`` for a user's factory."""
    if width is None:
        return f"ref-{name.rpartition(':')[2]}"
    return f"ref-{name}-{width:g}"
