"""In-memory data sets: uint8 NCHW images, int64 labels, class names, normalisation statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimforge.data._errors import DataError

__all__ = ["ArrayDataset", "DatasetInfo", "DatasetSplits", "Normalization"]

# A channel that is constant in the training split would divide by zero; one grey level is the
# smallest spread that still means something for 8-bit images.
_MIN_STD = 1.0 / 255.0
_STATS_CHUNK = 2048


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of pixel values scaled to [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if not mean or len(mean) != len(std):
            raise DataError(
                f"normalisation mean {mean} and std {std} must have one value per channel, the same count"
            )
        if any(not np.isfinite(s) or s <= 0 for s in std) or not all(np.isfinite(mean)):
            raise DataError(f"normalisation std {std} must be finite and > 0 (and mean {mean} finite)")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def num_channels(self) -> int:
        """How many channels these statistics are for."""
        return len(self.mean)

    @classmethod
    def from_images(cls, images: np.ndarray) -> Normalization:
        """Statistics of uint8 NCHW ``images`` (computed in chunks, accumulated in float64)."""
        if images.ndim != 4 or len(images) == 0:
            raise DataError(f"cannot compute normalisation statistics from images of shape {images.shape}")
        total = np.zeros(images.shape[1], np.float64)
        total_sq = np.zeros(images.shape[1], np.float64)
        for start in range(0, len(images), _STATS_CHUNK):
            chunk = images[start : start + _STATS_CHUNK].astype(np.float32)
            total += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
            total_sq += np.square(chunk).sum(axis=(0, 2, 3), dtype=np.float64)
        count = images.shape[0] * images.shape[2] * images.shape[3]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return cls(tuple((mean / 255.0).tolist()), tuple(np.maximum(std / 255.0, _MIN_STD).tolist()))

    def to_dict(self) -> dict[str, list[float]]:
        """A JSON-ready dict."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["mean"]), tuple(data["std"]))


def _read_only(array: np.ndarray) -> np.ndarray:
    # A read-only view keeps the dataset immutable without copying (full CIFAR-10 is 150 MB).
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """One part of a data set, held in memory.

    Args:
        images: uint8 array of shape (N, C, H, W), C in {1, 3}.
        labels: int64 array of shape (N,), each in ``range(len(class_names))``.
        class_names: one name per class; its length is the number of classes.
        normalization: statistics to normalise with (those of the training split), if known.
        augment_default: whether the standard augmentation (pad-4 random crop + horizontal flip)
            suits this data; :func:`slimforge.data.make_loader` uses it when ``augment=None``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    normalization: Normalization | None = None
    augment_default: bool = False

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise DataError(
                f"images must be a uint8 array of shape (N, C, H, W), got "
                f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}"
            )
        if images.shape[1] not in (1, 3):
            raise DataError(f"images have {images.shape[1]} channels; slimforge reads grey (1) or RGB (3)")
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
            raise DataError(
                f"labels must be an int64 array of shape (N,), got "
                f"{getattr(labels, 'dtype', type(labels).__name__)} {getattr(labels, 'shape', '')}"
            )
        if len(labels) != len(images):
            raise DataError(f"{len(images)} images but {len(labels)} labels; they must match one to one")
        names = tuple(str(n) for n in self.class_names)
        if not names:
            raise DataError("a data set needs at least one class name")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(
                f"labels span {labels.min()}..{labels.max()} but there are {len(names)} classes "
                f"(labels must be in 0..{len(names) - 1})"
            )
        if self.normalization is not None and self.normalization.num_channels != images.shape[1]:
            raise DataError(
                f"normalisation statistics are for {self.normalization.num_channels} channels but the "
                f"images have {images.shape[1]}"
            )
        object.__setattr__(self, "images", _read_only(images))
        object.__setattr__(self, "labels", _read_only(labels))
        object.__setattr__(self, "class_names", names)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes (including any without images in this part)."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        _, c, h, w = self.images.shape
        return (c, h, w)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """The images at ``indices`` (a copy), with the same classes and settings."""
        indices = np.asarray(indices, dtype=np.int64)
        return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])

    def replace(self, **changes: Any) -> ArrayDataset:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DatasetInfo:
    """What a loaded data set is, in JSON-ready form (for run stores and reports)."""

    spec: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_train_images: int
    num_val_images: int
    num_test_images: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(
            spec=str(data["spec"]),
            class_names=tuple(data["class_names"]),
            input_shape=tuple(int(v) for v in data["input_shape"]),  # type: ignore[arg-type]
            num_train_images=int(data["num_train_images"]),
            num_val_images=int(data["num_val_images"]),
            num_test_images=int(data["num_test_images"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A loaded data set: training, validation and (where the source has one) test parts.

    Every part carries the normalisation statistics of the training part, the same class names and
    the same input shape.
    """

    train: ArrayDataset
    val: ArrayDataset
    test: ArrayDataset | None
    spec: str

    def __post_init__(self) -> None:
        for name, part in (("val", self.val), ("test", self.test)):
            if part is None:
                continue
            if part.class_names != self.train.class_names or part.input_shape != self.train.input_shape:
                raise DataError(
                    f"{self.spec}: the {name} part ({part.num_classes} classes, images {part.input_shape}) "
                    f"does not match the train part ({self.train.num_classes} classes, "
                    f"images {self.train.input_shape})"
                )

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per class."""
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.train.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.train.input_shape

    @property
    def normalization(self) -> Normalization | None:
        """The statistics every part is normalised with."""
        return self.train.normalization

    def info(self) -> DatasetInfo:
        """A JSON-ready summary."""
        norm = self.normalization
        return DatasetInfo(
            spec=self.spec,
            class_names=self.class_names,
            input_shape=self.input_shape,
            num_train_images=len(self.train),
            num_val_images=len(self.val),
            num_test_images=0 if self.test is None else len(self.test),
            mean=() if norm is None else norm.mean,
            std=() if norm is None else norm.std,
        )
