"""Stage ``retrain``: train the chosen architectures (and the hand-designed references) on the data.

``finetune`` starts from the supernet's weights and, with ``distill``, learns from the supernet's
largest sub-network as a teacher (in-place distillation, Yu et al. 2020, BigNAS); ``scratch``
trains the standalone network from a fresh initialisation. The references (MobileNetV2 at a few
widths by default) are trained from scratch for as many epochs as the chosen models have seen in
all (supernet + retraining), so that "similar accuracy" compares like with like.
"""

from __future__ import annotations

import json
import time
from typing import Any

from slimforge.runs._context import RunContext
from slimforge.runs.layout import model_dir

__all__ = ["run_retrain_stage"]

_RECORD = "train.json"


def _train_config(ctx: RunContext, epochs: int, lr: float) -> Any:
    from slimforge.compress import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=ctx.config.retrain.batch_size, lr=lr, seed=ctx.config.seed)


def _finished(path: Any) -> dict[str, Any] | None:
    record = path / _RECORD
    if (path / "model.json").is_file() and record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))
    return None


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


def _train_chosen(ctx: RunContext, chosen: dict[str, Any], supernet: Any, teacher: Any) -> dict[str, Any]:
    from slimforge.compress import DistillHook, accuracy, train_classifier
    from slimforge.runs.model_io import save_model

    cfg = ctx.config.retrain
    genome = tuple(chosen["genome"])
    splits = ctx.splits
    if cfg.mode == "finetune":
        net = supernet.extract(genome).train()
    else:
        net = ctx.space.build(genome, num_classes=splits.num_classes)
    hooks = [DistillHook(teacher, input_shape=ctx.input_shape)] if teacher is not None else []
    start = time.perf_counter()
    result = train_classifier(
        net, splits.train, _train_config(ctx, cfg.epochs, cfg.lr), hooks=hooks,
        progress=ctx.progress, desc=f"retrain {chosen['name']}",
    )
    seconds = time.perf_counter() - start
    out = model_dir(ctx.run_dir, chosen["name"]) / "trained"
    config = {
        "builder": "space",
        "space": ctx.config.space.name,
        "space_options": dict(ctx.config.space.options),
        "arch": chosen["arch"],
        "kwargs": {"num_classes": splits.num_classes},
        "input_shape": list(ctx.input_shape),
    }
    metrics = chosen.get("metrics", {})
    estimated = metrics.get("accuracy", 100.0 - metrics["error"] if "error" in metrics else None)
    test = splits.test if splits.test is not None else splits.val
    record = {
        "name": chosen["name"],
        "arch": chosen["arch"],
        "estimated_accuracy_pct": estimated,
        "accuracy_pct": accuracy(net, test),
        "val_accuracy_pct": accuracy(net, splits.val),
        "accuracy_split": "test" if splits.test is not None else "val",
        "mode": cfg.mode,
        "distilled": teacher is not None,
        "epochs": cfg.epochs,
        "seconds": seconds,
        "loss_per_epoch": list(result.loss_per_epoch),
    }
    _save(out, net, config, record, save_model)
    return record


def _train_reference(ctx: RunContext, name: str, width: float) -> dict[str, Any]:
    from slimforge.compress import accuracy, train_classifier
    from slimforge.runs.model_io import build_model, save_model

    splits = ctx.splits
    cfg = ctx.config.retrain
    epochs = cfg.reference_epochs if cfg.reference_epochs is not None else ctx.config.supernet.epochs + cfg.epochs
    label = f"ref-{name}-{width:g}"
    config = {
        "builder": "zoo",
        "name": name,
        "kwargs": {"num_classes": splits.num_classes, "width": width},
        "input_shape": list(ctx.input_shape),
    }
    net = build_model(config)
    start = time.perf_counter()
    train_classifier(net, splits.train, _train_config(ctx, epochs, 0.05), progress=ctx.progress, desc=f"train {label}")
    test = splits.test if splits.test is not None else splits.val
    record = {
        "name": label,
        "model": name,
        "width": width,
        "accuracy_pct": accuracy(net, test),
        "val_accuracy_pct": accuracy(net, splits.val),
        "epochs": epochs,
        "seconds": time.perf_counter() - start,
    }
    _save(model_dir(ctx.run_dir, label) / "trained", net, config, record, save_model)
    return record


def _save(out: Any, net: Any, config: dict[str, Any], record: dict[str, Any], save_model: Any) -> None:
    # The model is renamed into place whole; train.json last marks it finished for a resume.
    save_model(net, config, out, overwrite=True)
    (out / _RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def run_retrain_stage(ctx: RunContext) -> dict[str, Any]:
    """Train every chosen architecture once (duplicates across devices share one model) and the references."""
    chosen = ctx.outputs("select")["chosen"]
    cfg = ctx.config.retrain
    supernet = teacher = None
    models, seen = [], {}
    for c in chosen:
        if c["arch"] in seen:
            seen[c["arch"]]["devices"].append(c["device"])
            continue
        out = model_dir(ctx.run_dir, c["name"]) / "trained"
        record = _finished(out)
        if record is None:
            if cfg.mode == "finetune" and supernet is None and ctx.config.accuracy.source == "supernet":
                from slimforge.supernet import load_supernet

                supernet = load_supernet(ctx.path(ctx.outputs("supernet")["dir"]))[0]
                teacher = _teacher(ctx, supernet) if cfg.distill else None
            ctx.log(f"  retraining {c['name']} ({cfg.mode}, {cfg.epochs} epochs)")
            record = _train_chosen(ctx, c, supernet, teacher)
        entry = {**record, "dir": ctx.rel(out), "devices": [c["device"]]}
        seen[c["arch"]] = entry
        models.append(entry)
    references = []
    for name in cfg.reference:
        for width in cfg.reference_widths:
            out = model_dir(ctx.run_dir, f"ref-{name}-{width:g}") / "trained"
            record = _finished(out)
            if record is None:
                ctx.log(f"  training reference {name} width {width:g}")
                record = _train_reference(ctx, name, width)
            references.append({**record, "dir": ctx.rel(out)})
    return {"models": models, "reference": references}

