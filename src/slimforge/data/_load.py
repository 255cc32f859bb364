"""``load_dataset``: spec -> loader -> resize / channels -> train/val split -> normalisation statistics."""

from __future__ import annotations

from slimforge.data._arrays import convert_channels, resize_images
from slimforge.data._base import DatasetLoader
from slimforge.data._batches import check_seed
from slimforge.data._dataset import ArrayDataset, DatasetSplits, Normalization
from slimforge.data._errors import DataError
from slimforge.data._registry import LOADERS
from slimforge.data._spec import DataSpec, parse_data_spec
from slimforge.data._split import split_indices, val_size

__all__ = ["load_dataset"]

_AUGMENT_SIZE = (32, 32)


def _conform(part: ArrayDataset, image_size: int | None, channels: int | None) -> ArrayDataset:
    images = part.images
    if image_size is not None:
        images = resize_images(images, image_size)
    if channels is not None:
        images = convert_channels(images, channels)
    return part if images is part.images else part.replace(images=images)


def load_dataset(
    spec: str | DataSpec = "digits",
    *,
    val_fraction: float | None = None,
    val_count: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    channels: int | None = None,
    normalization: Normalization | None = None,
) -> DatasetSplits:
    """Load the data set ``spec`` names, split off validation images, attach normalisation statistics.

    Args:
        spec: ``cifar10:DIR``, ``cifar100:DIR``, ``folder:DIR``, ``npz:FILE`` or ``digits``.
        val_fraction: share of the training part held out for validation (default 0.1).
        val_count: number of training images held out instead (give one of the two). Neither
            applies when the source ships its own validation part (``val/``, ``x_val``).
        seed: seeds the stratified validation split.
        image_size: resize every image to this square size (bilinear); None keeps the native size
            (digits: 32).
        channels: 1 or 3 to convert grey/RGB; None keeps the native count (digits: 3).
        normalization: statistics to use; None computes them from the training part (after the split).

    Returns:
        The training, validation and test parts (test is None when the source has none); every part
        carries the same statistics, and ``augment_default`` is set for 32x32 data whose classes
        survive crops and flips.
    """
    parsed = parse_data_spec(spec)
    seed = check_seed(seed)
    loader: DatasetLoader = LOADERS.get(parsed.scheme)()
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise DataError(f"image_size {image_size!r} must be a positive integer")
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels {channels!r} must be 1 (grey) or 3 (RGB)")
    source = loader.load(parsed.path)
    size = image_size if image_size is not None else loader.default_image_size
    chans = channels if channels is not None else loader.default_channels
    train = _conform(source.train, size, chans)
    if source.val is not None:
        val = _conform(source.val, size, chans)
    else:
        train_idx, val_idx = split_indices(train.labels, val_size(len(train), val_fraction, val_count), seed)
        train, val = train.subset(train_idx), train.subset(val_idx)
    test = None if source.test is None else _conform(source.test, size, chans)
    norm = normalization if normalization is not None else Normalization.from_images(train.images)
    if norm.num_channels != train.input_shape[0]:
        raise DataError(
            f"{parsed}: the given normalisation has {norm.num_channels} channel(s) but the images have "
            f"{train.input_shape[0]}"
        )
    augment = loader.standard_augmentation and train.input_shape[1:] == _AUGMENT_SIZE
    parts = [
        p.replace(normalization=norm, augment_default=augment) if p is not None else None
        for p in (train, val, test)
    ]
    return DatasetSplits(train=parts[0], val=parts[1], test=parts[2], spec=str(parsed))
