"""Stage ``supernet``: train the weight-sharing supernet once, for every device's search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimforge.runs._context import RunContext
from slimforge.runs._outputs import SupernetOutput
from slimforge.runs._stage import RunStage
from slimforge.runs.config import ConfigError, RunConfig

__all__ = ["SupernetStage", "needs_accuracy", "skip_reason", "supernet_train_config"]


def needs_accuracy(config: RunConfig) -> bool:
    """Whether the search's objectives or constraints ask for an accuracy estimate."""
    from slimforge.search.constraint import Constraint

    metrics = set(config.search.objectives) | {Constraint.parse(c).metric for c in config.search.constraints}
    return bool(metrics & {"error", "accuracy"}) or config.select.objective in ("error", "accuracy")


def skip_reason(config: RunConfig) -> str | None:
    """Why the run trains no supernet (None when it does)."""
    if config.accuracy.source != "supernet":
        return f"accuracy comes from {config.accuracy.source}"
    if not needs_accuracy(config) and config.retrain.mode != "finetune":
        return "no objective needs accuracy and retraining starts from scratch"
    return None


def supernet_train_config(config: RunConfig) -> Any:
    """The :class:`slimforge.supernet.TrainConfig` the run's supernet is trained with.

    The validation images are held out of weight training, so the search's inherited-weight
    accuracy is measured on images the supernet has not seen.
    """
    from slimforge.supernet import TrainConfig

    return TrainConfig(
        data=config.data,
        epochs=config.supernet.epochs,
        space=config.space.name,
        space_kwargs=dict(config.space.options),
        method=config.supernet.method,
        method_options=dict(config.supernet.options),
        batch_size=config.supernet.batch_size,
        lr=config.supernet.lr,
        bn_affine=config.supernet.bn_affine,
        val_fraction=config.val_fraction,
        hold_out_val=True,
        seed=config.seed,
    )


class SupernetStage(RunStage):
    """Train (or resume training) the supernet into ``RUN_DIR/supernet``; skipped for a table source."""

    name = "supernet"
    output = SupernetOutput

    def settings(self, config: RunConfig) -> dict[str, Any]:
        reason = skip_reason(config)
        if reason is not None:
            return {"skipped": reason}
        return {"train": supernet_train_config(config).to_dict()}

    def check(self, config: RunConfig) -> None:
        from slimforge.runs._preflight import at
        from slimforge.spaces import SearchSpace, get_space
        from slimforge.supernet import TRAINERS

        if skip_reason(config) is not None:
            return
        at("supernet.method", lambda: TRAINERS.get(config.supernet.method).resolve_options(dict(config.supernet.options)))
        space = get_space(config.space.name, **config.space.options)
        if type(space)._supernet is SearchSpace._supernet:
            raise ConfigError(
                f"space {config.space.name!r} has no weight-sharing supernet, which accuracy.source supernet "
                "and retrain.mode finetune need; implement _supernet in the space, or use accuracy.source "
                "table:FILE with retrain.mode scratch, or objectives without error"
            )

    def artifacts(self, ctx: RunContext) -> list[Path]:
        return [ctx.path("supernet")]

    def _run(self, ctx: RunContext) -> SupernetOutput:
        from slimforge.io import progress_bar
        from slimforge.supernet import train_supernet

        cfg = ctx.config
        reason = skip_reason(cfg)
        if reason is not None:
            return SupernetOutput(None, cfg.supernet.method, cfg.supernet.epochs, skipped=reason)
        out = ctx.path("supernet")
        bar = progress_bar(desc=f"supernet {cfg.supernet.method}", unit="step", enabled=ctx.progress)

        def update(p: Any) -> None:
            bar.total = p.total_steps
            bar.update(p.step - bar.n)
            bar.set_postfix(epoch=f"{p.epoch}/{p.epochs}", loss=f"{p.loss:.3f}", img_s=f"{p.images_per_s:.0f}")

        try:
            result = train_supernet(
                supernet_train_config(cfg), out, device=ctx.supernet_device, resume=True,
                progress=update, splits=ctx.splits,
            )
        finally:
            bar.close()
        return SupernetOutput(
            dir=ctx.rel(out),
            method=cfg.supernet.method,
            epochs=cfg.supernet.epochs,
            seconds=float(result.wall_time_s),
            images_per_s=float(result.images_per_s),
            final_loss=float(result.final_loss),
        )
