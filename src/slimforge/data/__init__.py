"""Data sets for slimforge: loaders behind a registry, splits, augmentation and fast batches.

>>> from slimforge.data import load_dataset, make_loader, calibration_batch
>>> splits = load_dataset("npz:../shared/data/cifar10_subset.npz", val_fraction=0.1, seed=0)
>>> for images, labels in make_loader(splits.train, 128, train=True, seed=0):
...     ...
>>> batch = calibration_batch(splits.train, 64, seed=0)

A data spec is ``SCHEME:PATH``; the schemes are the keys of :data:`LOADERS`:

- ``cifar10:DIR`` / ``cifar100:DIR``: the official binary (``cifar-10-batches-bin``,
  ``cifar-100-binary``) or python (``cifar-10-batches-py``, ``cifar-100-python``) layout; DIR is
  that folder or the folder it was extracted into. CIFAR-100 uses the fine labels.
- ``folder:DIR``: one sub-folder of PNG/JPEG images per class (classes sorted by name), or
  ``train/`` with optional ``val/`` and ``test/`` holding such sub-folders.
- ``npz:FILE``: ``x_train``/``y_train`` (+ optional ``x_val``/``y_val``, ``x_test``/``y_test``), uint8
  NCHW, NHWC or (N, H, W) images, integer labels, optional ``class_names``. At most
  :data:`MAX_CLASSES` classes, and without ``class_names`` no more than there are labelled images;
  each array's header must agree with the bytes the archive holds (checked before loading).
- ``csv:FILE``: a header row ``path,label[,split]``; PNG/JPEG paths relative to the CSV, labels class
  names or indices, split train (default), val or test.
- ``python:REF`` or just ``data.py:load`` / ``mypkg.data:load``: a function of your own, called with
  no arguments, returning a mapping like an npz archive (``x_train``, ``y_train``, ...); imported
  only because the spec names it.
- ``digits``: scikit-learn's bundled 8x8 digits, by default 3x32x32 (see ``slimforge.data._digits``).

The python layout of CIFAR is a pickle. slimforge never unpickles it with the standard loader:
a restricted unpickler resolves only numpy's array reconstructor, ``ndarray`` and ``dtype`` (plus a
latin-1 ``_codecs.encode``), so a hostile file fails with a :class:`DataError` instead of running
code, whatever directory it comes from, and there is no "trusted" switch to get wrong.

Everything is held in memory as uint8 NCHW arrays; randomness comes only from the seeds given.
"""

from __future__ import annotations

from slimforge.data._arrays import MAX_CLASSES
from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._batches import BatchLoader, calibration_batch, crop_flip, make_loader, sample_batch
from slimforge.data._dataset import ArrayDataset, DatasetInfo, DatasetSplits, Normalization
from slimforge.data._errors import DataError
from slimforge.data._load import load_dataset
from slimforge.data._registry import LOADERS
from slimforge.data._spec import DataSpec, parse_data_spec
from slimforge.data._split import split_indices

__all__ = [
    "LOADERS",
    "MAX_CLASSES",
    "ArrayDataset",
    "BatchLoader",
    "DataError",
    "DataSpec",
    "DatasetInfo",
    "DatasetLoader",
    "DatasetSplits",
    "Normalization",
    "SourceSplits",
    "calibration_batch",
    "crop_flip",
    "list_schemes",
    "load_dataset",
    "make_loader",
    "parse_data_spec",
    "sample_batch",
    "split_indices",
]


def list_schemes() -> list[str]:
    """The data spec schemes slimforge reads."""
    return LOADERS.list()
