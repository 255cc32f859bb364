"""Array helpers shared by the loaders: label checks, layout detection, resizing, channel conversion."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from slimforge.data._errors import DataError

__all__ = ["check_labels", "convert_channels", "resize_images", "to_nchw"]

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
