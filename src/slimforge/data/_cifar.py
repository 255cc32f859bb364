"""CIFAR-10 and CIFAR-100 directories in the official binary and python layouts.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. Binary layout: records of
label byte(s) then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom); CIFAR-100
records carry a coarse and a fine label byte, and slimforge uses the fine (100-class) label. Python
layout: pickled dicts read with the restricted unpickler of :mod:`slimforge.data._pickle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from slimforge.data._arrays import check_labels
from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._dataset import ArrayDataset
from slimforge.data._errors import DataError
from slimforge.data._pickle import load_restricted_pickle

__all__ = ["Cifar10Loader", "Cifar100Loader"]

_PIXELS = 3 * 32 * 32
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class _Layout:
    """The files of one layout: the folder the archive extracts to, the batches, the class names."""

    kind: str  # "binary" or "python"
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    names_file: str

    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file)


class _CifarLoader(DatasetLoader):
    """Shared reader; subclasses give the file names and label positions."""

    name: ClassVar[str]
    num_classes: ClassVar[int]
    layouts: ClassVar[tuple[_Layout, _Layout]]
    label_bytes: ClassVar[int]  # label bytes before each binary record's pixels; the last one is used
    label_key: ClassVar[str]  # the key of the labels in a python batch
    names_key: ClassVar[str]  # the key of the class names in the python meta file

    def _find_layout(self, path: Path) -> tuple[_Layout, Path]:
        # The user may name the extracted folder itself or the folder it was extracted into.
        for layout in self.layouts:
            for root in (path, path / layout.folder):
                if any((root / f).is_file() for f in layout.files()):
                    missing = [f for f in layout.files() if not (root / f).is_file()]
                    if missing:
                        raise DataError(
                            f"{root}: incomplete {self.name} {layout.kind} layout, "
                            f"missing {', '.join(missing)}"
                        )
                    return layout, root
        expected = " or ".join(f"{lay.folder}/ ({', '.join(lay.files())})" for lay in self.layouts)
        raise DataError(f"{path}: no {self.name} data found; expected {expected}")

    def _load(self, path: Path | None) -> SourceSplits:
        assert path is not None
        layout, root = self._find_layout(path)
        read = self._read_binary if layout.kind == "binary" else self._read_python
        names = self._class_names(layout, root)
        train_parts = [read(root / f) for f in layout.train_files]
        train = ArrayDataset(
            np.concatenate([p[0] for p in train_parts]), np.concatenate([p[1] for p in train_parts]), names
        )
        test = ArrayDataset(*read(root / layout.test_file), names)
        return SourceSplits(train=train, test=test)

    def _read_binary(self, file: Path) -> tuple[np.ndarray, np.ndarray]:
        raw = np.fromfile(file, dtype=np.uint8)
        record = self.label_bytes + _PIXELS
        if raw.size == 0 or raw.size % record:
            raise DataError(
                f"{file}: {raw.size} bytes is not a whole number of {record}-byte {self.name} records "
                f"({self.label_bytes} label byte(s) + {_PIXELS} pixels); "
                f"the file is truncated or not {self.name}"
            )
        records = raw.reshape(-1, record)
        labels = check_labels(records[:, self.label_bytes - 1], len(records), str(file), self.num_classes)
        images = np.ascontiguousarray(records[:, self.label_bytes :]).reshape(-1, 3, 32, 32)
        return images, labels

    def _read_python(self, file: Path) -> tuple[np.ndarray, np.ndarray]:
        batch = load_restricted_pickle(file)
        data = batch.get("data")
        if data is None or self.label_key not in batch:
            raise DataError(f"{file}: a {self.name} python batch needs 'data' and {self.label_key!r} entries")
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != _PIXELS
        ):
            raise DataError(
                f"{file}: 'data' is {getattr(data, 'dtype', type(data).__name__)} "
                f"{getattr(data, 'shape', '')}; "
                f"expected uint8 (N, {_PIXELS})"
            )
        try:
            labels = np.asarray(batch[self.label_key])
        except (TypeError, ValueError):
            raise DataError(f"{file}: {self.label_key!r} is not a list of class indices") from None
        labels = check_labels(labels, len(data), str(file), self.num_classes)
        return np.ascontiguousarray(data).reshape(-1, 3, 32, 32), labels

    def _class_names(self, layout: _Layout, root: Path) -> tuple[str, ...]:
        file = root / layout.names_file
        if not file.is_file():
            return self._fallback_names()
        if layout.kind == "binary":
            names = [line.strip() for line in file.read_text(encoding="utf-8", errors="replace").splitlines()]
        else:
            entry = load_restricted_pickle(file).get(self.names_key)
            if not isinstance(entry, (list, tuple)):
                raise DataError(f"{file}: no {self.names_key!r} list of class names")
            names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in entry]
        names = [n for n in names if n]
        if len(names) != self.num_classes:
            raise DataError(f"{file}: lists {len(names)} class names; {self.name} has {self.num_classes}")
        return tuple(names)

    def _fallback_names(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(self.num_classes))


class Cifar10Loader(_CifarLoader):
    """``cifar10:DIR``: ``cifar-10-batches-bin`` (data_batch_1..5.bin, test_batch.bin) or ``-py``."""

    name = "CIFAR-10"
    num_classes = 10
    label_bytes = 1
    label_key = "labels"
    names_key = "label_names"
    layouts = (
        _Layout(
            "binary",
            "cifar-10-batches-bin",
            tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
            "test_batch.bin",
            "batches.meta.txt",
        ),
        _Layout(
            "python",
            "cifar-10-batches-py",
            tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test_batch",
            "batches.meta",
        ),
    )

    def _fallback_names(self) -> tuple[str, ...]:
        return CIFAR10_CLASSES


class Cifar100Loader(_CifarLoader):
    """``cifar100:DIR``: ``cifar-100-binary`` (train.bin, test.bin) or ``cifar-100-python``; fine labels."""

    name = "CIFAR-100"
    num_classes = 100
    label_bytes = 2  # coarse, then fine
    label_key = "fine_labels"
    names_key = "fine_label_names"
    layouts = (
        _Layout("binary", "cifar-100-binary", ("train.bin",), "test.bin", "fine_label_names.txt"),
        _Layout("python", "cifar-100-python", ("train",), "test", "meta"),
    )
