"""``digits``: scikit-learn's bundled 8x8 handwritten digits, so slimforge runs with no data at all.

The 1,797 images (UCI optical recognition of handwritten digits, test part; Alpaydin and Kaynak,
1998) ship inside scikit-learn. Their 17 grey levels (0..16) are scaled to 0..255. By default
:func:`slimforge.data.load_dataset` upsamples them bilinearly to 32x32 and replicates the grey
channel to 3, the CIFAR input shape, so every model and search space built for CIFAR-10 runs on
them unchanged; pass ``image_size=16, channels=1`` (or 8) for a cheaper variant. The test part is
fixed, the last 360 images (20%, about 36 per class), so test figures stay comparable whatever the
seed; the seed splits validation images off the other 1,437. Augmentation is off by default: a
flipped digit is a different (or no) digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._dataset import ArrayDataset
from slimforge.errors import MissingDependencyError

__all__ = ["DigitsLoader"]

NUM_TEST_IMAGES = 360
_MAX_LEVEL = 16.0


class DigitsLoader(DatasetLoader):
    """The built-in default data set (see the module docstring for the choices)."""

    needs_path = False
    default_image_size = 32
    default_channels = 3
    standard_augmentation = False

    def _load(self, path: Path | None) -> SourceSplits:
        try:
            from sklearn.datasets import load_digits
        except ImportError:  # pragma: no cover - scikit-learn is a dependency
            raise MissingDependencyError(
                "the digits data set needs scikit-learn; pip install scikit-learn"
            ) from None
        bunch = load_digits()
        images = np.round(bunch.images * (255.0 / _MAX_LEVEL)).astype(np.uint8)[:, None]
        labels = bunch.target.astype(np.int64)
        names = tuple(str(i) for i in range(10))
        cut = len(images) - NUM_TEST_IMAGES
        return SourceSplits(
            train=ArrayDataset(images[:cut], labels[:cut], names),
            test=ArrayDataset(images[cut:], labels[cut:], names),
        )
