"""Stage ``supernet``: train the weight-sharing supernet once, for every device's search."""

from __future__ import annotations

from typing import Any

from slimforge.runs._context import RunContext

__all__ = ["run_supernet_stage", "supernet_train_config"]


def supernet_train_config(ctx: RunContext) -> Any:
    """The :class:`slimforge.supernet.TrainConfig` the run's supernet is trained with.

    The validation images are held out of weight training, so the search's inherited-weight
    accuracy is measured on images the supernet has not seen.
    """
    from slimforge.supernet import TrainConfig

    cfg = ctx.config
    return TrainConfig(
        data=cfg.data,
        epochs=cfg.supernet.epochs,
        space=cfg.space.name,
        space_kwargs=dict(cfg.space.options),
        method=cfg.supernet.method,
        method_options=dict(cfg.supernet.options),
        batch_size=cfg.supernet.batch_size,
        lr=cfg.supernet.lr,
        val_fraction=cfg.val_fraction,
        hold_out_val=True,
        seed=cfg.seed,
    )


def run_supernet_stage(ctx: RunContext) -> dict[str, Any]:
    """Train (or resume training) the supernet into ``RUN_DIR/supernet``."""
    from slimforge.supernet import train_supernet

    if ctx.config.accuracy.source != "supernet":
        return {"skipped": f"accuracy comes from {ctx.config.accuracy.source}", "dir": None}
    out = ctx.path("supernet")
    bar = _progress_bar(ctx)
    try:
        result = train_supernet(
            supernet_train_config(ctx),
            out,
            device=ctx.config.supernet.device,
            resume=True,
            progress=bar.update if bar is not None else None,
            splits=ctx.splits,
        )
    finally:
        if bar is not None:
            bar.close()
    return {
        "dir": ctx.rel(out),
        "method": ctx.config.supernet.method,
        "epochs": ctx.config.supernet.epochs,
        "seconds": float(result.wall_time_s),
        "images_per_s": float(result.images_per_s),
        "final_loss": float(result.final_loss),
        "val_accuracy_pct": None,
    }


class _Bar:
    """A tqdm bar fed by :func:`train_supernet`'s per-step progress callback."""

    def __init__(self, desc: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(desc=desc, unit="step", leave=False)

    def update(self, p: Any) -> None:
        if self._bar.total != p.total_steps:
            self._bar.total = p.total_steps
        self._bar.n = p.step
        self._bar.set_postfix(epoch=f"{p.epoch}/{p.epochs}", loss=f"{p.loss:.3f}", img_s=f"{p.images_per_s:.0f}")

    def close(self) -> None:
        self._bar.close()


def _progress_bar(ctx: RunContext) -> _Bar | None:
    return _Bar(f"supernet {ctx.config.supernet.method}") if ctx.progress else None
