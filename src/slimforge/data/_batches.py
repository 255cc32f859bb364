"""Fast batch iteration over in-memory data: augmentation and normalisation on whole batches.

Per-sample PIL transforms cost far more than the small models slimforge trains on CPU, so the
loader pads the whole data set once and cuts each batch's random crops (and flips) with one gather.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from slimforge.data._dataset import ArrayDataset, Normalization
from slimforge.data._errors import DataError

__all__ = ["BatchLoader", "calibration_batch", "check_seed", "crop_flip", "make_loader", "sample_batch"]

PAD = 4


def crop_flip(
    padded: torch.Tensor,
    offsets_y: torch.Tensor,
    offsets_x: torch.Tensor,
    flips: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Cut one ``size`` crop from each image of ``padded`` (B, C, Hp, Wp), flipping where asked.

    The crop of image ``i`` starts at row ``offsets_y[i]``, column ``offsets_x[i]``; where ``flips[i]``
    it is mirrored left-right. Works on any dtype; returns a new (B, C, H, W) tensor.
    """
    b, c, hp, wp = padded.shape
    h, w = size
    cols = torch.arange(w)
    cols = torch.where(flips[:, None], w - 1 - cols, cols) + offsets_x[:, None]  # (B, W)
    rows = offsets_y[:, None] + torch.arange(h)  # (B, H)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, flat).reshape(b, c, h, w)


def check_seed(seed: int) -> int:
    """Return ``seed`` after checking it is a non-negative integer (what numpy's generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed {seed!r} must be a non-negative integer")
    return int(seed)


def _resolve_normalization(split: ArrayDataset, normalize: bool | Normalization) -> Normalization | None:
    if isinstance(normalize, Normalization):
        norm = normalize
    elif normalize is True:
        if split.normalization is None:
            raise DataError(
                "this split carries no normalisation statistics; load it with load_dataset, pass "
                "normalize=Normalization(...), or normalize=False"
            )
        norm = split.normalization
    elif normalize is False:
        return None
    else:
        raise DataError(f"normalize must be True, False or a Normalization, got {normalize!r}")
    if norm.num_channels != split.input_shape[0]:
        raise DataError(
            f"normalisation for {norm.num_channels} channel(s) given for "
            f"{split.input_shape[0]}-channel images"
        )
    return norm


def _scale_shift(norm: Normalization | None, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    # x / 255 then (x - mean) / std, folded into one multiply-add per pixel.
    if norm is None:
        return torch.full((1, channels, 1, 1), 1.0 / 255.0), torch.zeros(1, channels, 1, 1)
    mean = torch.tensor(norm.mean, dtype=torch.float64)
    std = torch.tensor(norm.std, dtype=torch.float64)
    scale = (1.0 / (255.0 * std)).float().view(1, -1, 1, 1)
    shift = (-mean / std).float().view(1, -1, 1, 1)
    return scale, shift


class BatchLoader:
    """Iterates ``(images, labels)`` batches: float32 (B, C, H, W) and int64 (B,).

    Epoch ``e`` of a loader with seed ``s`` is a pure function of ``(s, e)``: its order, crops and
    flips come from ``numpy.random.default_rng([s, e])``. ``iter(loader)`` runs epochs 0, 1, 2, ... in
    turn; :meth:`epoch` runs a given one.

    With ``shard=(i, n)`` the loader is process ``i`` of ``n`` in data-parallel training (a distributed
    sampler): every batch is the ``i``-th of ``n`` contiguous slices of the global batch the unsharded
    loader yields, with the same crops and flips, and ``batch_size`` is the global batch.
    """

    def __init__(
        self,
        split: ArrayDataset,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        normalization: Normalization | None,
        seed: int,
        drop_last: bool,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.batch_size = batch_size
        self.shard = _check_shard(shard)
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.num_images = len(split)
        self._size = split.input_shape[1:]
        if augment:
            # Zero padding, as in the standard CIFAR recipe (He et al., 2016); done once, not per batch.
            n, c, h, w = split.images.shape
            padded = np.zeros((n, c, h + 2 * PAD, w + 2 * PAD), np.uint8)
            padded[:, :, PAD : PAD + h, PAD : PAD + w] = split.images
            self._images = torch.from_numpy(padded)
        else:
            self._images = torch.from_numpy(np.array(split.images))  # writable copy: torch wants one
        self._labels = torch.from_numpy(np.array(split.labels))
        self._scale, self._shift = _scale_shift(normalization, split.input_shape[0])
        self._epochs_started = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_images // self.batch_size
        return (self.num_images + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self._epochs_started
        self._epochs_started += 1
        return self.epoch(epoch)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (the same for the same seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        n = self.num_images
        order = torch.from_numpy(rng.permutation(n) if self.shuffle else np.arange(n))
        if self.augment:
            offsets = torch.from_numpy(rng.integers(0, 2 * PAD + 1, size=(2, n)))
            flips = torch.from_numpy(rng.random(n) < 0.5)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            lo, hi = _shard_bounds(len(idx), *self.shard)
            idx = idx[lo:hi]
            if self.augment:
                sel = slice(b * self.batch_size + lo, b * self.batch_size + hi)
                pixels = crop_flip(
                    self._images.index_select(0, idx),
                    offsets[0, sel],
                    offsets[1, sel],
                    flips[sel],
                    self._size,
                )
            else:
                pixels = self._images.index_select(0, idx)
            images = pixels.float().mul_(self._scale).add_(self._shift)
            yield images, self._labels.index_select(0, idx)


def make_loader(
    split: ArrayDataset,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    augment: bool | None = None,
    normalize: bool | Normalization = True,
    drop_last: bool | None = None,
    shard: tuple[int, int] = (0, 1),
) -> BatchLoader:
    """A batch iterator over ``split``.

    Args:
        split: a part of :func:`slimforge.data.load_dataset`'s result.
        batch_size: images per batch.
        train: shuffle every epoch (and, by default, augment and drop the last short batch).
        seed: seeds order, crops and flips; with the epoch number it fixes every batch.
        augment: pad-4 random crop + horizontal flip; None means ``train and split.augment_default``.
        normalize: True uses ``split.normalization``; False yields pixels in [0, 1]; or given statistics.
        drop_last: drop the last short batch; None means ``train`` (so batch norm never sees a batch
            of one), unless that would leave no batch at all.
        shard: ``(i, n)``: yield only process ``i``'s slice of each batch of ``n`` data-parallel
            processes (``batch_size`` stays the global batch); ``(0, 1)`` yields whole batches.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size {batch_size!r} must be a positive integer")
    seed = check_seed(seed)
    norm = _resolve_normalization(split, normalize)
    if augment is None:
        augment = train and split.augment_default
    if drop_last is None:
        drop_last = train and len(split) >= batch_size
    return BatchLoader(
        split,
        batch_size,
        shuffle=train,
        augment=bool(augment),
        normalization=norm,
        seed=seed,
        drop_last=drop_last,
        shard=shard,
    )


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    ok = (
        isinstance(shard, tuple)
        and len(shard) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
    )
    if not ok or not 0 <= shard[0] < shard[1]:
        raise DataError(f"shard {shard!r} must be (index, count) with 0 <= index < count")
    return shard


def _shard_bounds(size: int, index: int, count: int) -> tuple[int, int]:
    # Contiguous slices whose sizes differ by at most one (equal when count divides the batch).
    return index * size // count, (index + 1) * size // count


def sample_batch(
    split: ArrayDataset, n: int, *, seed: int = 0, normalize: bool | Normalization = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` distinct images of ``split`` drawn with ``seed`` (no augmentation) and their labels."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(split):
        raise DataError(f"cannot draw {n!r} images from a split of {len(split)}; ask for 1..{len(split)}")
    seed = check_seed(seed)
    norm = _resolve_normalization(split, normalize)
    idx = np.random.default_rng(seed).choice(len(split), size=n, replace=False)
    scale, shift = _scale_shift(norm, split.input_shape[0])
    images = torch.from_numpy(split.images[idx]).float().mul_(scale).add_(shift)
    return images, torch.from_numpy(split.labels[idx])


def calibration_batch(
    split: ArrayDataset, n: int, *, seed: int = 0, normalize: bool | Normalization = True
) -> torch.Tensor:
    """``n`` normalised images of ``split`` for zero-cost proxies, BN recalibration and INT8 calibration."""
    return sample_batch(split, n, seed=seed, normalize=normalize)[0]
