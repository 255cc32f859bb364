"""The one classifier trainer (SGD + cosine, optional label smoothing) and its accuracy metrics.

Used to train baselines, to finetune after every compression stage, to retrain searched networks
and by the benchmarks. Compression methods plug in through :class:`TrainHook` (an extra loss term,
gradient surgery after ``backward``, weight surgery after the step) instead of growing the
trainer's argument list.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slimforge.data import ArrayDataset
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.nn import evaluating
from slimforge.training._runtime import TrainRuntime
from slimforge.training.distributed import DistContext, global_batch_norms, local_batch_size

__all__ = ["TrainHook", "TrainResult", "TrainSettings", "accuracy", "onnx_accuracy", "train_classifier"]


@dataclass(frozen=True)
class TrainSettings(JsonRecord):
    """Settings of :func:`train_classifier`.

    Args:
        epochs: passes over the training split.
        batch_size: images per step.
        lr: peak learning rate, annealed to 0 per step by ``lr_schedule``.
        momentum: SGD momentum (Nesterov).
        weight_decay: L2 penalty on conv/linear weights (not on BN parameters or biases).
        label_smoothing: cross-entropy label smoothing (Szegedy et al., 2016); 0 is off.
        warmup_epochs: linear warm-up epochs before the schedule.
        lr_schedule: ``cosine`` (Loshchilov and Hutter, 2017) or ``linear``, ``lr * (1 - t)`` (the
            ``LambdaLR`` of SPOS's code, which the co-design study's device experiment used).
        seed: seeds the batch order and augmentation.
        augment: pad-4 crop + flip; None uses the data set's default.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    seed: int = 0
    augment: bool | None = None
    lr_schedule: str = "cosine"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "warmup_epochs", "seed"):
            value = getattr(self, name)
            lowest = 1 if name == "batch_size" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise InvalidInputError(f"training {name} must be an integer >= {lowest}, got {value!r}")
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise InvalidInputError(f"training {name} must be a non-negative number, got {value!r}")
        if self.lr_schedule not in ("cosine", "linear"):
            raise InvalidInputError(f"lr_schedule {self.lr_schedule!r} must be cosine or linear")
        if not 0 <= self.label_smoothing < 1:
            raise InvalidInputError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")


@dataclass(frozen=True)
class TrainResult(JsonRecord):
    """What one training run did: per-epoch mean loss and training accuracy, and its wall time."""

    epochs: int
    steps: int
    loss_per_epoch: tuple[float, ...]
    train_accuracy_pct_per_epoch: tuple[float, ...]
    seconds: float


class TrainHook:
    """A compression method's part in training; every method is optional.

    ``attach`` runs before the first step (register forward hooks, move buffers), ``detach`` after the
    last one, even on error.
    """

    def attach(self, model: nn.Module) -> None:
        """Prepare for training ``model``."""

    def parameters(self) -> list[nn.Parameter]:
        """Extra trainable parameters the hook owns (FitNet regressors), optimised with the model's."""
        return []

    def extra_loss(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        """A term added to the loss (or None)."""
        return None

    def replace_loss(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        """The loss to minimise, given the cross-entropy ``loss`` (distillation mixes in soft targets)."""
        return loss

    def after_backward(self, model: nn.Module) -> None:
        """Change gradients before the optimizer step (sparsity subgradients, masks, shared weights)."""

    def after_step(self, model: nn.Module) -> None:
        """Change weights after the optimizer step (re-apply masks)."""

    def detach(self, model: nn.Module) -> None:
        """Undo :meth:`attach`."""


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    # Decay on BN scales and biases only shrinks them; the standard recipes leave them out.
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if isinstance(module, (nn.Conv2d, nn.Linear)) and name == "weight":
                decay.append(p)
            else:
                no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_classifier(
    model: nn.Module,
    train_split: ArrayDataset,
    config: TrainSettings | None = None,
    *,
    hooks: Sequence[TrainHook] = (),
    progress: bool = False,
    desc: str = "train",
    runtime: TrainRuntime | None = None,
    dist: DistContext | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_split`` with SGD (Nesterov) and a per-step learning-rate schedule.

    Args:
        model: the network; trained in place and left in eval mode.
        train_split: a :class:`slimforge.data.ArrayDataset` (normalised with its own statistics).
        config: hyper-parameters; :class:`TrainSettings` defaults when None.
        hooks: compression methods taking part in training (see :class:`TrainHook`).
        progress: show a tqdm bar on stderr.
        desc: the bar's label.
        runtime: device, mixed precision, ``torch.compile`` and memory order of the steps
            (:class:`TrainRuntime`; the CPU in float32 when None). The model is moved there for
            training and back to the device it came from afterwards; hooks see the moved model.
        dist: this process's place in a data-parallel run under torchrun
            (:func:`slimforge.training.distributed.distributed_from_env`): each process trains on its
            shard of every batch of ``config.batch_size`` images on ``dist.device``, gradients are
            averaged before the hooks see them and batch norm normalises over the global batch, so N
            processes end with one process's weights; the result counts every process's images.
    """
    from slimforge.data import make_loader
    from slimforge.io import progress_bar

    config = config if config is not None else TrainSettings()
    start = time.perf_counter()
    losses: list[float] = []
    accs: list[float] = []
    if config.epochs == 0:
        return TrainResult(0, 0, (), (), 0.0)
    ctx = dist if dist is not None else DistContext()
    local_batch_size(config.batch_size, ctx.world_size)
    loader = make_loader(
        train_split,
        config.batch_size,
        train=True,
        seed=config.seed,
        augment=config.augment,
        shard=(ctx.rank, ctx.world_size),
    )
    steps_per_epoch = max(1, len(loader))
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    step = 0
    runtime = runtime if runtime is not None else TrainRuntime()
    device = ctx.device if ctx.distributed else runtime.torch_device()
    home = _device_of(model)
    global_bn = contextlib.ExitStack()  # closed in the finally below
    global_bn.enter_context(global_batch_norms(model, ctx))
    step_model = runtime.prepare(model, device)
    ctx.broadcast_tensors([*model.parameters(), *model.buffers()])  # every rank starts from rank 0's weights
    for hook in hooks:
        hook.attach(model)
    try:
        groups = _param_groups(model, config.weight_decay)
        groups[1]["params"] += [p for hook in hooks for p in hook.parameters()]
        optimizer = torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0
        )
        model.train()
        with progress_bar(total=total, desc=desc, unit="step", enabled=progress) as bar:
            for epoch in range(config.epochs):
                loss_sum, correct, seen = 0.0, 0, 0
                for images, labels in loader.epoch(epoch):
                    images, labels = runtime.batch(images, device), labels.to(device, non_blocking=True)
                    lr = _lr_at(step, total, warmup, config.lr, config.lr_schedule)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    with runtime.autocast(device):
                        logits = step_model(images)
                    logits = logits.float()  # the loss and the hooks' terms in float32 under bf16
                    loss = criterion(logits, labels)
                    for hook in hooks:
                        loss = hook.replace_loss(model, images, labels, logits, loss)
                        extra = hook.extra_loss(model, images, labels, logits)
                        if extra is not None:
                            loss = loss + extra
                    if _diverged(loss, ctx):
                        raise InvalidInputError(
                            f"training diverged (loss {loss.item()} at epoch {epoch}); lower the learning rate "
                            f"(now {config.lr})"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    ctx.average_gradients(p for group in optimizer.param_groups for p in group["params"])
                    for hook in hooks:
                        hook.after_backward(model)
                    optimizer.step()
                    for hook in hooks:
                        hook.after_step(model)
                    step += 1
                    loss_sum += float(loss.detach()) * len(labels)
                    correct += int((logits.detach().argmax(1) == labels).sum())
                    seen += len(labels)
                    bar.set_postfix_str(
                        f"epoch {epoch + 1}/{config.epochs}, loss {loss.item():.3f}", refresh=False
                    )
                    bar.update(1)
                if ctx.distributed:  # the epoch's figures over every process's images
                    loss_sum, correct, seen = (
                        ctx.mean(v) * ctx.world_size for v in (loss_sum, correct, seen)
                    )
                losses.append(loss_sum / max(seen, 1))
                accs.append(100.0 * correct / max(seen, 1))
    finally:
        global_bn.close()
        for hook in hooks:
            hook.detach(model)
        model.eval()
        if device != home or runtime.channels_last:
            model.to(home, memory_format=torch.contiguous_format)
    return TrainResult(config.epochs, step, tuple(losses), tuple(accs), time.perf_counter() - start)


def _diverged(loss: torch.Tensor, ctx: DistContext) -> bool:
    # Under torchrun every process must stop together, or the others would wait for it forever.
    bad = not bool(torch.isfinite(loss))
    return ctx.mean(float(bad)) > 0 if ctx.distributed else bad


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _lr_at(step: int, total: int, warmup: int, peak: float, schedule: str = "cosine") -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return peak * (1.0 - progress)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def accuracy(
    model: nn.Module, split: ArrayDataset, *, batch_size: int = 256, device: str | torch.device | None = None
) -> float:
    """Top-1 accuracy (%) of ``model`` on ``split`` (a :class:`slimforge.data.ArrayDataset`), in eval mode.

    Args:
        device: a training device spec (``auto``, ``cpu``, ``cuda[:N]``) to evaluate on; the model
            goes back where it was afterwards. None evaluates where the model is.

    The model's train/eval flags are restored afterwards.
    """
    from slimforge.data import make_loader
    from slimforge.training._runtime import resolve_train_device

    home = _device_of(model)
    dev = home if device is None else resolve_train_device(device)
    with evaluating(model):
        model.to(dev)
        try:
            correct = 0
            for images, labels in make_loader(split, batch_size, train=False):
                logits = model(images.to(dev, non_blocking=True))
                correct += int((logits.argmax(1).cpu() == labels).sum())
        finally:
            model.to(home)
    return 100.0 * correct / max(1, len(split))


def onnx_accuracy(path: str | Path, split: ArrayDataset, *, threads: int = 1) -> float:
    """Top-1 accuracy (%) of the ONNX model at ``path`` on ``split``, run by ONNX Runtime on the CPU.

    The file's batch dimension is honoured (slimforge exports batch 1), so images are fed in chunks
    of that size.
    """
    import onnxruntime as ort

    from slimforge.data import make_loader

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    batch = feed.shape[0] if isinstance(feed.shape[0], int) and feed.shape[0] > 0 else 256
    correct = 0
    for images, labels in make_loader(split, 256, train=False):
        x = images.numpy()
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            if len(chunk) < batch:  # a fixed-batch file: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            logits = session.run(None, {feed.name: chunk})[0][: len(x[i : i + batch])]
            correct += int((logits.argmax(1) == labels[i : i + batch].numpy()).sum())
    return 100.0 * correct / max(1, len(split))
