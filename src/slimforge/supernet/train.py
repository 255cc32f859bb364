"""The supernet training loop: data, supernet, trainer, checkpoints every epoch, resume after interruption.

Every random choice comes from the run's seed: weight initialisation (a forked, seeded RNG), data
order and augmentation (the loaders' epochs are pure functions of seed and epoch), path sampling and
Gumbel noise (the trainer's generator, checkpointed). A run stopped after any step and resumed from its
checkpoint therefore ends with the same weights as an uninterrupted one (bit for bit on CPU).

Under ``torchrun`` the run is data-parallel (:mod:`slimforge.training.distributed`): each process
trains on its shard of every global batch of ``config.batch_size`` images, on the same path, with
gradients averaged and batch norm over the global batch, so N processes end where one process with
the same batch size ends (up to float rounding). Only rank 0 writes the run directory; the checkpoint
holds nothing per rank, so a run resumes on any number of processes that divides the batch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.data import ArrayDataset, BatchLoader, DatasetSplits, load_dataset, make_loader
from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.spaces import get_space
from slimforge.supernet._registry import TRAINERS
from slimforge.supernet._trainer import SupernetTrainer
from slimforge.supernet.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    load_model_state,
    read_run_config,
    save_checkpoint,
    write_run_config,
)
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData
from slimforge.training.distributed import (
    DistContext,
    distributed_from_env,
    env_rank,
    global_batch_norms,
    local_batch_size,
)

__all__ = ["TrainProgress", "TrainResult", "resolve_device", "train_supernet", "training_part"]


@dataclass(frozen=True)
class TrainProgress:
    """A snapshot after each step (for progress bars)."""

    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float
    images_per_s: float


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_supernet` returns.

    Attributes:
        steps: steps done so far (over every call); ``total_steps`` when ``finished``.
        final_loss: mean training loss of the last completed epoch (NaN before the first one ends).
        wall_time_s, images_per_s, images_trained: of this call only.
        resumed_from_step: the step this call started from (0 for a fresh run).
        derived_arch: the architecture the method selects (DARTS/GDAS argmax, RSPS random search), as
            the space's string, or None.
        world_size: processes that trained this call (torchrun's ``WORLD_SIZE``; 1 without it);
            ``images_trained`` and ``images_per_s`` count the images of all of them.
    """

    method: str
    space: str
    data: str
    epochs: int
    steps: int
    total_steps: int
    finished: bool
    final_loss: float
    wall_time_s: float
    images_per_s: float
    images_trained: int
    resumed_from_step: int
    checkpoint_dir: str
    derived_arch: str | None = None
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        if values.get("final_loss") is None:
            values["final_loss"] = float("nan")
        return cls(**values)


def resolve_device(device: torch.device | str) -> torch.device:
    """``device`` as a torch device; one that does not exist here raises InvalidInputError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"unknown device {device!r}; use cpu or cuda (cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} is not available on this machine (no CUDA); use --train-device cpu"
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidInputError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


def _merge(a: ArrayDataset, b: ArrayDataset) -> ArrayDataset:
    return a.replace(images=np.concatenate([a.images, b.images]), labels=np.concatenate([a.labels, b.labels]))


def training_part(splits: DatasetSplits, config: TrainConfig) -> ArrayDataset:
    """The images the weights of ``config``'s run train on: the training part, plus the validation
    part unless the method or ``config.hold_out_val`` holds it out."""
    held_out = TRAINERS.get(config.method).holds_out_val or config.hold_out_val
    return splits.train if held_out else _merge(splits.train, splits.val)


def _batches_from(loader: BatchLoader, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches cycling over epochs, starting at overall batch number ``start``."""
    epoch, offset = divmod(start, len(loader))
    while True:
        for b, batch in enumerate(loader.epoch(epoch)):
            if b >= offset:
                yield batch
        epoch, offset = epoch + 1, 0


def _val_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def _derive(trainer: SupernetTrainer, splits: DatasetSplits, device: torch.device) -> str | None:
    data = None
    if trainer.holds_out_val:
        data = EvalData.from_splits(splits, split="val", seed=trainer.config.seed, device=device)
    genome = trainer.derive(data)
    return None if genome is None else trainer.space.to_string(genome)


def train_supernet(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    splits: DatasetSplits | None = None,
) -> TrainResult:
    """Train the supernet ``config`` describes, checkpointing into ``out_dir`` after every epoch.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group and trains data-parallel:
    ``config.batch_size`` is the global batch and must divide by the number of processes.

    Args:
        config: the run.
        out_dir: run directory (``config.json`` + ``checkpoint.pt``).
        device: torch device for the supernet and batches.
        resume: continue from ``out_dir``'s checkpoint if there is one (its config must equal ``config``);
            without it an existing checkpoint there is an error, so nothing is overwritten by accident.
        stop_after_steps: stop (and checkpoint) after this many steps of this call, e.g. to split a long
            run into sessions.
        progress: called after every step.
        splits: the loaded data, if the caller has it already (must be ``load_dataset(config.data,
            val_fraction=config.val_fraction, seed=config.seed)``).
    """
    dev = resolve_device(device)
    # Refused before joining the process group, so every process exits at once with the same message.
    local_batch_size(config.batch_size, env_rank()[1])
    with distributed_from_env(dev) as ctx:
        return _train(config, Path(out_dir), ctx, resume, stop_after_steps, progress, splits)


def _train(
    config: TrainConfig,
    out: Path,
    ctx: DistContext,
    resume: bool,
    stop_after_steps: int | None,
    progress: Callable[[TrainProgress], None] | None,
    splits: DatasetSplits | None,
) -> TrainResult:
    dev = ctx.device
    local_batch_size(config.batch_size, ctx.world_size)
    trainer_cls = TRAINERS.get(config.method)
    trainer_cls.resolve_options(config.method_options)
    space = get_space(config.space, **config.space_kwargs)
    if stop_after_steps is not None and (
        isinstance(stop_after_steps, bool) or not isinstance(stop_after_steps, int) or stop_after_steps < 1
    ):
        raise InvalidInputError(f"stop_after_steps must be a positive integer, got {stop_after_steps!r}")
    resuming = has_checkpoint(out)
    if resuming and not resume:
        raise InvalidInputError(
            f"{out} already holds a supernet checkpoint; pass --resume to continue it or choose another --out"
        )
    if resuming:
        saved, _, _ = read_run_config(out)
        diffs = config.differences(saved)
        if diffs:
            raise InvalidInputError(
                f"{out} holds a run with other settings ({'; '.join(diffs)} [given vs saved]); resume it with the same settings or choose another --out"
            )
    if splits is None:
        splits = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    # Channels-last (NHWC) convolutions run about twice as fast on CPU (oneDNN skips layout reorders).
    supernet = trainer_cls.build_supernet(space, splits.num_classes, config).to(
        dev, memory_format=torch.channels_last
    )

    shard = (ctx.rank, ctx.world_size)
    loader = make_loader(
        training_part(splits, config), config.batch_size, train=True, seed=config.seed, shard=shard
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * config.epochs
    trainer = trainer_cls(supernet, config, total_steps, dev)

    loss_sum, loss_count, last_epoch_loss, derived = 0.0, 0, float("nan"), None
    if resuming:
        state = load_checkpoint(out, map_location=dev)
        load_model_state(supernet, state, out)
        try:
            trainer.load_state_dict(state["trainer"])
            loss_sum, loss_count = float(state["loss_sum"]), int(state["loss_count"])
            last_epoch_loss, derived = float(state["last_epoch_loss"]), state.get("derived")
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(
                f"{out}: the checkpoint's training state is damaged ({type(exc).__name__}: {exc}); "
                "train again into another --out"
            ) from None
    # Every rank has looked at the run directory before rank 0 writes to it.
    ctx.barrier()
    if not resuming and ctx.is_main:
        write_run_config(out, config, splits.num_classes, splits.info().to_dict())
    trainer.distribute(ctx)

    def checkpoint() -> None:
        if not ctx.is_main:
            return
        save_checkpoint(
            out,
            {
                "model": supernet.state_dict(),
                "trainer": trainer.state_dict(),
                "loss_sum": loss_sum,
                "loss_count": loss_count,
                "last_epoch_loss": last_epoch_loss,
                "derived": derived,
            },
        )

    start = trainer.step_count
    val_batches = None
    if trainer.needs_val:
        val_loader = make_loader(
            splits.val, config.batch_size, train=True, seed=_val_seed(config.seed), shard=shard
        )
        val_batches = _batches_from(val_loader, start)
    train_batches = _batches_from(loader, start)
    images, t0 = 0, time.perf_counter()
    with global_batch_norms(supernet, ctx):
        while trainer.step_count < total_steps and (
            stop_after_steps is None or trainer.step_count - start < stop_after_steps
        ):
            batch = next(train_batches)
            # The mean over the ranks is the global batch's loss (equal shards), the same on every rank,
            # so every rank stops together when it is not finite.
            loss = ctx.mean(trainer.step(batch, None if val_batches is None else next(val_batches)))
            if not math.isfinite(loss):
                raise InvalidInputError(
                    f"training loss became {loss} at step {trainer.step_count}; lower --lr (now {config.lr}) and start again"
                )
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            images += len(batch[1]) * ctx.world_size
            if progress is not None:
                elapsed = max(time.perf_counter() - t0, 1e-9)
                progress(
                    TrainProgress(
                        epoch=(trainer.step_count - 1) // steps_per_epoch + 1,
                        epochs=config.epochs,
                        step=trainer.step_count,
                        total_steps=total_steps,
                        loss=loss_sum / loss_count,
                        images_per_s=images / elapsed,
                    )
                )
            if trainer.step_count % steps_per_epoch == 0:
                last_epoch_loss, loss_sum, loss_count = loss_sum / loss_count, 0.0, 0
                checkpoint()
    wall = time.perf_counter() - t0
    finished = trainer.step_count >= total_steps
    if finished and derived is None:
        derived = _derive(trainer, splits, dev)
    checkpoint()
    ctx.barrier()  # the other ranks return once rank 0's last checkpoint is on disk
    return TrainResult(
        method=config.method,
        space=config.space,
        data=config.data,
        epochs=config.epochs,
        steps=trainer.step_count,
        total_steps=total_steps,
        finished=finished,
        final_loss=last_epoch_loss,
        wall_time_s=wall,
        images_per_s=images / wall if wall > 0 else 0.0,
        images_trained=images,
        resumed_from_step=start,
        checkpoint_dir=str(out),
        derived_arch=derived,
        world_size=ctx.world_size,
    )
