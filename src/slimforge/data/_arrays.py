"""Array helpers shared by the loaders: label checks, layout detection, resizing, channel conversion."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from slimforge.data._errors import DataError

__all__ = ["MAX_CLASSES", "check_class_count", "check_labels", "convert_channels", "resize_images", "to_nchw"]

#: The most classes a data set may have (ImageNet-21k has 21,841). Inferred from labels, a class
#: count is built name by name and sets the width of the classifier's last layer, so one stray
#: label of 2**62 must not get that far.
MAX_CLASSES = 100_000

_RESIZE_CHUNK = 1024
# ITU-R 601-2 luma, the weights Pillow uses for RGB -> "L".
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def check_labels(
    labels: np.ndarray, num_images: int, where: str, num_classes: int | None = None
) -> np.ndarray:
    """Return ``labels`` as int64 after checking shape, dtype, length and range.

    ``where`` names the source in error messages.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        fix = " (for one-hot labels use y.argmax(1))" if labels.ndim == 2 else ""
        raise DataError(
            f"{where}: labels have shape {labels.shape}; expected ({num_images},) class indices{fix}"
        )
    if labels.dtype.kind not in "iu":
        raise DataError(f"{where}: labels have dtype {labels.dtype}; expected integer class indices")
    if len(labels) != num_images:
        raise DataError(f"{where}: {num_images} images but {len(labels)} labels; they must match one to one")
    if len(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            limit = "N-1" if num_classes is None else str(num_classes - 1)
            raise DataError(
                f"{where}: labels span {low}..{high}, out of range (class indices run from 0 to {limit})"
            )
    return labels.astype(np.int64)


def check_class_count(num_classes: int, num_images: int, where: str) -> int:
    """Raise unless ``num_classes`` (largest label + 1, or the names given) is a plausible count.

    It must be at most :data:`MAX_CLASSES` and, for classes inferred from labels, at most the
    number of labelled images (``num_images``; 0 skips that check): K classes need K images
    before every class can appear once.
    """
    if num_classes > MAX_CLASSES:
        raise DataError(
            f"{where}: {num_classes:,} classes, above slimforge's maximum of {MAX_CLASSES:,}; "
            "class indices must run 0..K-1 (relabel the data)"
        )
    if num_images and num_classes > num_images:
        raise DataError(
            f"{where}: the largest label makes {num_classes:,} classes but there are only {num_images:,} "
            "labelled images; class indices must run 0..K-1 (relabel the data, or give class_names)"
        )
    return num_classes


def to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """Return uint8 ``images`` as NCHW, detecting NHWC and (N, H, W) greyscale.

    A 4-D array whose axis 1 holds 1 or 3 entries is NCHW; otherwise, if its last axis does, NHWC.
    When both could hold channels (e.g. 3x3 images) NCHW wins, as PyTorch stores it.
    """
    if images.dtype != np.uint8:
        raise DataError(
            f"{where}: images have dtype {images.dtype}; expected uint8 pixels 0..255 "
            f"(convert with (x * 255).round().astype(numpy.uint8) for floats in [0, 1])"
        )
    if images.ndim == 3:
        return images[:, None]
    if images.ndim != 4:
        raise DataError(
            f"{where}: images have shape {images.shape}; expected (N, C, H, W), (N, H, W, C) or (N, H, W)"
        )
    if images.shape[1] in (1, 3):
        return images
    if images.shape[3] in (1, 3):
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    raise DataError(
        f"{where}: images have shape {images.shape}: neither NCHW nor NHWC with 1 (grey) or 3 (RGB) channels"
    )


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 NCHW ``images`` to ``size`` x ``size`` (bilinear; antialiased when shrinking)."""
    if images.shape[2] == size and images.shape[3] == size:
        return images
    shrink = size < images.shape[2] or size < images.shape[3]
    out = np.empty((images.shape[0], images.shape[1], size, size), np.uint8)
    for start in range(0, len(images), _RESIZE_CHUNK):
        chunk = torch.from_numpy(np.array(images[start : start + _RESIZE_CHUNK], np.float32))
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[start : start + len(chunk)] = resized.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert uint8 NCHW ``images`` to ``channels`` (1: luma of RGB; 3: grey replicated)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=1))
    if have == 3 and channels == 1:
        grey = np.tensordot(images.astype(np.float32), _LUMA, axes=([1], [0]))
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)[:, None]
    raise DataError(f"cannot convert {have}-channel images to {channels} channels; use channels=1 or 3")
