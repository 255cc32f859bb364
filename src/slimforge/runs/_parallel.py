"""``slimforge run`` under ``torchrun``: rank 0 runs the run, the other ranks join it where it trains.

``torchrun --nproc-per-node N -m slimforge run CONFIG`` starts N copies of the command. Rank 0 does
what a single process does (the lock, every stage, every write, the output); the training stages
(:data:`DATA_PARALLEL`: the supernet, retraining, the references) train data-parallel on every rank
through :mod:`slimforge.training.distributed`. The other ranks wait for rank 0's word on a gloo group
of their own: which stage to join (they read its inputs from the run store, which must therefore be
visible to every rank: one machine, or a shared filesystem), or that the run ended or failed.

The wait is a collective on its own group with a long timeout rather than a barrier on the training
group, whose default timeout (30 minutes) a search on rank 0 can outlast, and so that a GPU run's
waiting ranks hold no NCCL kernel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from slimforge.errors import SlimforgeError
from slimforge.runs._context import RunContext, StageError
from slimforge.runs._stage import RunStage
from slimforge.runs.config import ConfigError, RunConfig
from slimforge.runs.layout import STORE_FILE

__all__ = ["DATA_PARALLEL", "Ranks", "RunAborted", "check_world", "same_on_every_rank"]

#: the stages every rank trains together; the others run on rank 0 alone.
DATA_PARALLEL = ("supernet", "retrain", "reference")
#: how long a rank waits for rank 0 (a search on rank 0 may take hours; the default is 30 minutes).
#: Under 2**31 ms, which every backend's timer holds.
WAIT = timedelta(days=20)
_ABORT, _END = -1, -2


class RunAborted(SlimforgeError):
    """Raised on a rank other than 0 when rank 0 stopped the run; rank 0 says why, the others stay quiet."""


@contextlib.contextmanager
def same_on_every_rank(rank: int) -> Iterator[None]:
    """Checks that every rank makes alike: on ranks other than 0 their error is :class:`RunAborted`,
    so the one-line message is printed once (by rank 0), not once per process."""
    try:
        yield
    except SlimforgeError as exc:
        if rank == 0:
            raise
        raise RunAborted(str(exc)) from exc


def check_world(config: RunConfig, world: int, devices: tuple[str, str]) -> None:
    """Refuse, before anything is written, what ``world`` processes cannot train."""
    from slimforge.runs._stage_supernet import skip_reason

    batches = []
    if skip_reason(config) is None:
        batches.append(("supernet.batch_size", config.supernet.batch_size))
    if config.retrain.epochs > 0 or config.retrain.reference:
        batches.append(("retrain.batch_size", config.retrain.batch_size))
    for key, batch in batches:
        if batch % world:
            raise ConfigError(
                f"{key} {batch} does not divide over {world} processes (torchrun --nproc-per-node; it is the "
                f"global batch); use a multiple of {world}, e.g. {world * max(1, batch // world)}"
            )
    train = torch.device(devices[0])
    if train.type == "cuda" and train.index not in (None, 0):
        raise ConfigError(
            f"train_device {train} under torchrun: each process trains on its own GPU (cuda:LOCAL_RANK); give "
            "cuda, and choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    if train.type != torch.device(devices[1]).type:
        raise ConfigError(
            f"supernet.device {devices[1]} and train_device {devices[0]} differ, which torchrun cannot train "
            "(one process group); remove the deprecated supernet.device"
        )


class Ranks:
    """This process's part in a data-parallel run: rank 0 leads, the others follow its word.

    Args:
        ctx: the :class:`~slimforge.training.distributed.DistContext` of the training group.
        plan: the run's stages in order (the same on every rank).
    """

    def __init__(self, ctx: Any, plan: list[RunStage]) -> None:
        self.dist = ctx
        self.plan = plan
        self._index = {s.key: i for i, s in enumerate(plan)}
        self._group = dist.new_group(backend="gloo", timeout=WAIT)
        self._in_stage = False

    @property
    def is_main(self) -> bool:
        """Rank 0."""
        return bool(self.dist.is_main)

    @property
    def world_size(self) -> int:
        """The number of processes."""
        return int(self.dist.world_size)

    def _send(self, code: int) -> int:
        t = torch.tensor([code], dtype=torch.int64)
        dist.broadcast(t, src=0, group=self._group)
        return int(t.item())

    # -- rank 0 -------------------------------------------------------------------------------

    def lead(self, run: Callable[[], Any]) -> Any:
        """Rank 0: ``run()`` the run, then tell the other ranks it ended (or failed)."""
        try:
            result = run()
        except BaseException:
            # Inside a training stage the other ranks are in its collectives, not listening; torchrun
            # stops them when rank 0 exits.
            if not self._in_stage:
                self._send(_ABORT)
            raise
        self._send(_END)
        return result

    def started(self, threads: int) -> None:
        """Rank 0 holds the run directory and trains with ``threads`` threads: the others start."""
        self._send(threads)

    @contextlib.contextmanager
    def stage(self, stage: RunStage) -> Iterator[None]:
        """Around a stage on rank 0: a data-parallel one is announced, so every rank trains it."""
        if stage.name not in DATA_PARALLEL:
            yield
            return
        self._send(self._index[stage.key])
        self._in_stage = True
        try:
            yield
        finally:
            self._in_stage = False

    # -- the other ranks ----------------------------------------------------------------------

    def follow(self, config: RunConfig, run_dir: Path, train_device: str, supernet_device: str) -> None:
        """Ranks other than 0: train each stage rank 0 announces until it says the run ended."""
        from slimforge.io import RunStore

        threads = self._send(0)
        if threads == _ABORT:
            raise RunAborted("rank 0 stopped the run before it started; its message says why")
        torch.set_num_threads(threads)
        if not (run_dir / STORE_FILE).is_file():
            raise StageError(
                f"rank {self.dist.rank}: run directory {run_dir} is not visible here; under torchrun on several "
                "machines put it on a filesystem every machine shares"
            )
        ctx = RunContext(config, run_dir, None, progress=False, log=lambda text: None)  # type: ignore[arg-type]
        ctx.threads, ctx.dist = threads, self.dist
        ctx.train_device = str(self.dist.device) if self.dist.device.type == "cuda" else train_device
        ctx.supernet_device = supernet_device
        while True:
            code = self._send(0)
            if code == _END:
                return
            if code == _ABORT:
                raise RunAborted("rank 0 stopped the run; its message says why")
            stage = self.plan[code]
            with RunStore(run_dir / STORE_FILE, create=False) as store:
                for key in stage.inputs(config):
                    record = store.get_stage(key)
                    if record is None or record.status != "done":
                        raise StageError(f"rank {self.dist.rank}: stage {key} is not done in {run_dir}")
                    ctx.results[key] = self.plan[self._index[key]].output.from_dict(record.outputs)
            stage.run(ctx)

