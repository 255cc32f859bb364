"""Data-parallel training under ``torchrun``: process group, gradient averaging, global batch norm.

``torchrun --nproc-per-node N -m slimforge supernet train ...`` starts N copies of the command and
tells each its place through the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). :func:`distributed_from_env` joins them into one process group
(NCCL on GPUs, gloo on CPU); a plain ``slimforge`` command sees no ``WORLD_SIZE`` and runs alone.

Each rank trains on its shard of every global batch (``make_loader(..., shard=(rank, world))``);
gradients are averaged over the ranks before every optimiser step and batch norm normalises with the
statistics of the whole global batch, so N ranks compute what one process computes on the global batch
(up to float rounding). The gradients are averaged explicitly (by the supernet trainers in a hook on
each optimiser's step, by :func:`~slimforge.training.train_classifier` after ``backward``) rather than by
``torch.nn.parallel.DistributedDataParallel``: a supernet trains a different path at every step,
several trainers accumulate more than one backward pass per step (FairNAS, sandwich) and DARTS takes
gradients with ``torch.autograd.grad``, none of which DDP's reducer (one backward per forward, through
``.backward()``) averages correctly. What DDP does besides (the all-reduce of the gradients, the
same weights on every rank at the start) is done here explicitly.

In a script of your own, started with ``torchrun --nproc-per-node N script.py``:

>>> with distributed_from_env(torch.device("cpu")) as ctx:                     # doctest: +SKIP
...     train_classifier(model, splits.train, TrainSettings(batch_size=128), dist=ctx)
...     if ctx.is_main:
...         torch.save(model.state_dict(), "model.pt")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from slimforge.errors import InvalidInputError

__all__ = [
    "DistContext",
    "GlobalBatchNorm",
    "GlobalBatchNorm1d",
    "GlobalBatchNorm2d",
    "GlobalBatchNorm3d",
    "distributed_from_env",
    "env_rank",
    "global_batch_norms",
    "is_main_process",
    "local_batch_size",
]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(
            f"environment variable {name}={value!r} must be an integer (torchrun sets it)"
        ) from None


def env_rank() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` outside torchrun."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise InvalidInputError(
            f"RANK={rank} and WORLD_SIZE={world} do not fit (need 0 <= RANK < WORLD_SIZE)"
        )
    return rank, world, local


def is_main_process() -> bool:
    """Whether this process prints results and writes files: rank 0, or the only process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_rank()[0] == 0


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run: rank, world size, and the device it trains on.

    The single-process context (``world_size == 1``) makes every method a no-op, so callers need no
    branches of their own.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        """Whether there are other ranks to talk to."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints and prints results."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks."""
        if not self.distributed:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value``, on every rank."""
        if not self.distributed:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=self._comm_device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def broadcast_generator(self, generator: torch.Generator) -> None:
        """Give every rank rank 0's generator state (so their random draws agree)."""
        if not self.distributed:
            return
        state = generator.get_state().to(self._comm_device)
        dist.broadcast(state, src=0)
        generator.set_state(state.cpu())

    def broadcast_tensors(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` (parameters, buffers) with rank 0's values, in place."""
        if not self.distributed:
            return
        with torch.no_grad():
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each ``.grad`` by its mean over the ranks (one all-reduce of a flat buffer).

        Parameters without a gradient are left without one; every rank must have gradients for the
        same parameters (they train the same path), or the all-reduce sizes would not match.
        """
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def mean_tensors(self, tensors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """New tensors holding each tensor's mean over the ranks (None stays None), for gradients
        taken with ``torch.autograd.grad`` rather than left in ``.grad``."""
        if not self.distributed:
            return list(tensors)
        present = [t for t in tensors if t is not None]
        if not present:
            return list(tensors)
        flat = torch.cat([t.detach().reshape(-1) for t in present])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        out: list[torch.Tensor | None] = []
        offset = 0
        for t in tensors:
            if t is None:
                out.append(None)
                continue
            out.append(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
        return out

    @property
    def _comm_device(self) -> torch.device:
        # NCCL moves only CUDA tensors; gloo only CPU ones.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def local_batch_size(global_batch: int, world_size: int) -> int:
    """Images per rank for ``global_batch`` images per step; raises when it does not divide evenly."""
    if global_batch % world_size:
        raise InvalidInputError(
            f"batch size {global_batch} does not divide over {world_size} processes (torchrun "
            f"--nproc-per-node); use a multiple of {world_size}, e.g. {world_size * max(1, global_batch // world_size)}"
        )
    return global_batch // world_size


def _rank_device(device: torch.device, local_rank: int) -> torch.device:
    if device.type != "cuda":
        return device
    if device.index is not None and device.index != 0:
        raise InvalidInputError(
            f"device {device} under torchrun: each process trains on its own GPU (cuda:LOCAL_RANK); "
            "give --device cuda and choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise InvalidInputError(
            f"process {local_rank} on this node has no GPU of its own ({count} visible); "
            f"start at most {count} processes per node (torchrun --nproc-per-node {count})"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def distributed_from_env(device: torch.device) -> Iterator[DistContext]:
    """The run's :class:`DistContext`: joins torchrun's process group when ``WORLD_SIZE`` > 1.

    The group (NCCL for a CUDA ``device``, gloo otherwise) is created here and destroyed on exit; a
    group the caller created already is used as it is and left alone. Outside torchrun this yields
    the single-process context on ``device``.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        yield DistContext(rank, world, local, _rank_device(device, local) if world > 1 else device)
        return
    rank, world, local = env_rank()
    if world == 1:
        yield DistContext(device=device)
        return
    if not dist.is_available():
        raise InvalidInputError("this PyTorch build has no torch.distributed; run without torchrun")
    dev = _rank_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(
        backend, rank=rank, world_size=world, device_id=dev if dev.type == "cuda" else None
    )
    ctx = DistContext(rank, world, local, dev)
    try:
        yield ctx
        # Every rank past its last collective before any tears the group down: a rank that closed
        # its gloo connections while a peer still read from them aborted that peer (SIGABRT, seen
        # once in CI). Not on an exception, where the other ranks may never get here.
        ctx.barrier()
    finally:
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """The sum over the ranks, differentiable: the gradient of each rank's input is the sum of the
    ranks' output gradients (every rank's loss depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch: in training, mean and variance come from every rank's images.

    It is the class of an existing ``nn.BatchNorm*d`` swapped in place by :func:`global_batch_norms`
    (parameters, buffers and checkpoint keys unchanged). ``nn.SyncBatchNorm`` does the same on GPUs
    only; this one runs on gloo as well. The statistics travel through a differentiable all-reduce
    (:class:`_AllReduceSum`), so the backward pass is that of the global batch too.
    """

    #: the class it replaces (its forward runs outside a distributed training step).
    _stock: type[nn.Module] = nn.BatchNorm2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` with the global batch's statistics in training, as the stock class otherwise."""
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return self._stock.forward(self, x)
        world = dist.get_world_size()
        xf = x.float()
        dims = [0, *range(2, x.ndim)]
        shape = [1, -1] + [1] * (x.ndim - 2)
        count = float(xf.numel() // xf.shape[1]) * world
        # Two passes (mean, then the centred second moment), as a single process computes them, so the
        # result agrees with it to rounding; E[x^2] - E[x]^2 would lose digits in float32.
        mean = _AllReduceSum.apply(xf.sum(dims)) / count
        centred = xf - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * (count / max(count - 1.0, 1.0))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y.to(x.dtype) if not torch.is_autocast_enabled() else y


class GlobalBatchNorm1d(GlobalBatchNorm, nn.BatchNorm1d):
    """:class:`GlobalBatchNorm` in place of ``nn.BatchNorm1d``."""

    _stock = nn.BatchNorm1d


class GlobalBatchNorm2d(GlobalBatchNorm, nn.BatchNorm2d):
    """:class:`GlobalBatchNorm` in place of ``nn.BatchNorm2d``."""

    _stock = nn.BatchNorm2d


class GlobalBatchNorm3d(GlobalBatchNorm, nn.BatchNorm3d):
    """:class:`GlobalBatchNorm` in place of ``nn.BatchNorm3d``."""

    _stock = nn.BatchNorm3d


_GLOBAL = {
    nn.BatchNorm1d: GlobalBatchNorm1d,
    nn.BatchNorm2d: GlobalBatchNorm2d,
    nn.BatchNorm3d: GlobalBatchNorm3d,
}


@contextlib.contextmanager
def global_batch_norms(model: nn.Module, ctx: DistContext) -> Iterator[nn.Module]:
    """Within the block, every ``nn.BatchNorm1d/2d/3d`` of ``model`` normalises over the global batch.

    The classes are swapped back on exit, so evaluation after training (BN recalibration, scoring)
    runs per process as usual. Batch norm applied through ``F.batch_norm`` directly (the elastic
    space's sliced layers) is not affected and normalises per process.
    """
    swapped: list[tuple[nn.Module, type]] = []
    if ctx.distributed:
        for m in model.modules():
            if type(m) in _GLOBAL:
                swapped.append((m, type(m)))
                m.__class__ = _GLOBAL[type(m)]
    try:
        yield model
    finally:
        for m, cls in swapped:
            m.__class__ = cls
