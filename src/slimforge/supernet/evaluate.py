"""Inherited-weight accuracy of sub-networks: BN re-calibration, then one batched pass over a split.

Images are normalised once into tensors (:class:`EvalData`), so evaluating an architecture costs
only its forwards; :func:`evaluate_many` re-uses the same recalibration batches for every
architecture, which also makes the comparison between architectures lower-variance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from slimforge.data import ArrayDataset, DatasetSplits, make_loader, sample_batch
from slimforge.errors import InvalidInputError
from slimforge.spaces import Supernet
from slimforge.supernet.bn import BN_MODES, batch_norms, recalibrate_bn, restore_bn_stats, save_bn_stats

__all__ = ["BN_MODES", "EvalData", "SubnetScore", "evaluate", "evaluate_many", "score_many"]


def _ordered(split: ArrayDataset) -> tuple[torch.Tensor, torch.Tensor]:
    # The whole split in its own order, normalised with the training statistics in one pass.
    norm = split.normalization
    if norm is None:
        raise InvalidInputError(
            "the evaluation split carries no normalisation statistics; load it with load_dataset"
        )
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    images = (torch.from_numpy(split.images.copy()).float() / 255.0 - mean) / std
    return images, torch.from_numpy(split.labels.copy())


@dataclass(frozen=True, eq=False)
class EvalData:
    """Pre-normalised tensors for inherited-weight evaluation.

    Attributes:
        recal_images: training images for BN re-calibration (N, C, H, W), fixed for every architecture.
        images, labels: the evaluation split.
        batch_size: evaluation batch size (eval mode; only speed depends on it).
        recal_batch_size: re-calibration batch size (statistics depend on it; keep the training one).
        bn: how batch norm normalises while scoring (:data:`BN_MODES`); with ``"batch"`` the
            statistics of each evaluation batch, so ``batch_size`` then changes the result.
        finetune_batches: training batches (images, labels) each sub-network is fine-tuned on,
            from its inherited weights, before it is scored; the same batches for every
            architecture. Empty: scored with the inherited weights as they are.
        finetune_lr: learning rate of that fine-tune (SGD, momentum 0.9).
    """

    recal_images: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int = 256
    recal_batch_size: int = 64
    bn: str = "recalibrate"
    finetune_batches: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
    finetune_lr: float = 0.01

    def __post_init__(self) -> None:
        if self.bn not in BN_MODES:
            raise InvalidInputError(f"bn {self.bn!r} must be one of {', '.join(BN_MODES)}")
        lr = self.finetune_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
            raise InvalidInputError(f"finetune_lr must be a number > 0, got {lr!r}")
        if (
            self.images.ndim != 4
            or self.labels.ndim != 1
            or len(self.images) != len(self.labels)
            or not len(self.labels)
        ):
            raise InvalidInputError(
                "evaluation images (N, C, H, W) and labels (N,) must match and be non-empty"
            )
        if self.recal_images.ndim != 4:
            raise InvalidInputError("recalibration images must be a (N, C, H, W) tensor")
        for name in ("batch_size", "recal_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_splits(
        cls,
        splits: DatasetSplits,
        *,
        split: str = "test",
        recal_images: int = 256,
        seed: int = 0,
        device: torch.device | str = "cpu",
        batch_size: int = 256,
        recal_batch_size: int = 64,
        bn: str = "recalibrate",
        finetune_steps: int = 0,
        finetune_lr: float = 0.01,
    ) -> EvalData:
        """Evaluation data from a loaded data set.

        Args:
            splits: what :func:`slimforge.data.load_dataset` returned.
            split: ``"test"`` (falls back to ``"val"`` when the source has no test part) or ``"val"``.
            recal_images: training images drawn (with ``seed``, no augmentation) for re-calibration;
                0 turns re-calibration off (the supernet's own running statistics are used).
            bn: one of :data:`BN_MODES`; ``"batch"`` draws no re-calibration images.
            finetune_steps: batches of ``recal_batch_size`` augmented training images (seeded
                with ``seed``) each sub-network is fine-tuned on before scoring; 0 scores the
                inherited weights as they are.
            finetune_lr: the fine-tune's learning rate.
        """
        if isinstance(finetune_steps, bool) or not isinstance(finetune_steps, int) or finetune_steps < 0:
            raise InvalidInputError(f"finetune_steps must be an integer >= 0, got {finetune_steps!r}")
        if bn not in BN_MODES:
            raise InvalidInputError(f"bn {bn!r} must be one of {', '.join(BN_MODES)}")
        if bn == "batch":
            recal_images = 0
        if split not in ("test", "val"):
            raise InvalidInputError(f"evaluation split {split!r} must be 'test' or 'val'")
        part = splits.test if split == "test" and splits.test is not None else splits.val
        if isinstance(recal_images, bool) or not isinstance(recal_images, int) or recal_images < 0:
            raise InvalidInputError(f"recal_images must be an integer >= 0, got {recal_images!r}")
        n = min(recal_images, len(splits.train))
        recal = sample_batch(splits.train, n, seed=seed)[0] if n else torch.empty(0, *splits.input_shape)
        images, labels = _ordered(part)
        # Channels-last (NHWC) convolutions run about twice as fast on CPU.
        return cls(
            recal.to(device).contiguous(memory_format=torch.channels_last),
            images.to(device).contiguous(memory_format=torch.channels_last),
            labels.to(device),
            batch_size=batch_size,
            recal_batch_size=recal_batch_size,
            bn=bn,
            finetune_batches=_finetune_batches(splits.train, finetune_steps, recal_batch_size, seed, device),
            finetune_lr=finetune_lr,
        )

    @property
    def images_per_architecture(self) -> int:
        """Images each evaluated architecture processes (fine-tune, recalibration, evaluation)."""
        recal = len(self.recal_images) if self.bn == "recalibrate" else 0
        return sum(len(y) for _, y in self.finetune_batches) + recal + len(self.images)


@dataclass(frozen=True)
class SubnetScore:
    """Inherited-weight scores of one sub-network on the evaluation split.

    Attributes:
        accuracy: fraction of images classified correctly, in [0, 1].
        loss: mean cross-entropy (nats); a smoother, lower-variance signal than accuracy when the
            supernet is far from trained.
    """

    accuracy: float
    loss: float


def _finetune_batches(
    split: ArrayDataset, steps: int, batch_size: int, seed: int, device: torch.device | str
) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    if steps == 0:
        return ()
    loader = make_loader(split, batch_size, train=True, seed=seed)
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    epoch = 0
    while len(out) < steps:
        for images, labels in loader.epoch(epoch):
            out.append((images.to(device).contiguous(memory_format=torch.channels_last), labels.to(device)))
            if len(out) == steps:
                break
        epoch += 1
    return tuple(out)


def _finetuned(supernet: Supernet, genome: Sequence[int], data: EvalData) -> nn.Module:
    """The standalone network of ``genome`` with inherited weights, fine-tuned on ``data.finetune_batches``."""
    device = next(supernet.parameters()).device
    net = supernet.extract(genome).to(device, memory_format=torch.channels_last).train()
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=data.finetune_lr, momentum=0.9)
    with torch.enable_grad():
        for images, labels in data.finetune_batches:
            loss = nn.functional.cross_entropy(net(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
    return net


@torch.no_grad()
def _score(supernet: Supernet, genome: Sequence[int], data: EvalData) -> SubnetScore:
    model: nn.Module
    if data.finetune_batches:
        # A copy is fine-tuned, so the shared weights stay as they are for the next architecture.
        model = _finetuned(supernet, genome, data)
        forward: Callable[[torch.Tensor], torch.Tensor] = model
    else:
        model = supernet
        forward = lambda x: supernet(x, genome)  # noqa: E731
    if data.bn == "recalibrate" and len(data.recal_images):
        recalibrate_bn(model, data.recal_images, forward=forward, batch_size=data.recal_batch_size)
    model.eval()
    if data.bn == "batch":
        for m in batch_norms(model):
            m.train()
    correct, loss = 0, 0.0
    for images, labels in zip(data.images.split(data.batch_size), data.labels.split(data.batch_size)):
        logits = forward(images)
        correct += int((logits.argmax(dim=1) == labels).sum())
        loss += float(torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
    return SubnetScore(accuracy=correct / len(data.labels), loss=loss / len(data.labels))


def evaluate(supernet: Supernet, genome: Sequence[int], data: EvalData) -> float:
    """Accuracy (a fraction in [0, 1]) of sub-network ``genome`` with the supernet's weights.

    Batch-norm statistics are re-calibrated on ``data.recal_images`` first (unless there are none).
    The supernet is left as it was: its mode and running statistics are restored.
    """
    return evaluate_many(supernet, [genome], data)[0]


def evaluate_many(
    supernet: Supernet,
    genomes: Sequence[Sequence[int]],
    data: EvalData,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """:func:`evaluate` for many genomes, re-using the same recalibration batches.

    Args:
        progress: called with the number of architectures done after each one.
    """
    return [s.accuracy for s in score_many(supernet, genomes, data, progress=progress)]


def score_many(
    supernet: Supernet,
    genomes: Sequence[Sequence[int]],
    data: EvalData,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[SubnetScore]:
    """Accuracy and loss of each genome (one pass each), with the guarantees of :func:`evaluate`."""
    genomes = [supernet.space.validate(g) for g in genomes]
    was_training = supernet.training
    saved = save_bn_stats(supernet)
    try:
        out = []
        for done, genome in enumerate(genomes, start=1):
            out.append(_score(supernet, genome, data))
            if progress is not None:
                progress(done)
        return out
    finally:
        restore_bn_stats(supernet, saved)
        supernet.train(was_training)
