"""``npz:FILE``: numpy archives with ``x_<part>`` / ``y_<part>`` arrays (parts: train, val, test)."""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from slimforge.data._arrays import check_class_count, check_labels, to_nchw
from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._dataset import ArrayDataset
from slimforge.data._errors import DataError

__all__ = ["NpzLoader", "splits_from_arrays"]

_PARTS = ("train", "val", "test")
_NAMES_KEYS = ("class_names", "classes")


class NpzLoader(DatasetLoader):
    """Reads ``x_train``/``y_train`` (required) and ``x_val``/``y_val``, ``x_test``/``y_test`` (optional).

    Images are uint8, NCHW or NHWC (detected) or (N, H, W) grey; labels are integer class indices.
    An optional ``class_names`` (or ``classes``) string array names the classes; without it the
    classes are "0".."K-1" with K = the largest label + 1, at most the number of labelled images
    and at most :data:`~slimforge.data._arrays.MAX_CLASSES` (100,000). The archive is read with
    ``allow_pickle=False``, after every array's header is checked against the bytes it holds.
    """

    path_kind = "file"

    def _load(self, path: Path | None) -> SourceSplits:
        assert path is not None
        # np.load would take a file that is not a zip for a pickle; refuse it before that.
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a readable .npz archive (numpy.savez writes one)")
        _check_headers(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
        except MemoryError:
            raise DataError(
                f"{path}: its arrays do not fit in this machine's memory; use a smaller data set"
            ) from None
        except ValueError:  # object arrays would need pickle
            raise DataError(
                f"{path}: holds object arrays, which slimforge will not read (they need pickle); "
                f"save numeric images/labels and a string class_names array"
            ) from None
        return splits_from_arrays(arrays, str(path))


def splits_from_arrays(arrays: dict[str, np.ndarray], where: str) -> SourceSplits:
    """``x_<part>``/``y_<part>`` arrays (parts train, val, test) and optional ``class_names`` -> splits.

    Shared by ``npz:FILE`` and ``python:REF`` (a factory returning such a mapping); ``where`` names the
    source in messages.
    """
    path = where
    if not arrays:
        raise DataError(f"{path}: an empty archive; expected x_train and y_train arrays")
    for key in arrays:
        prefix, _, part = key.partition("_")
        if prefix in ("x", "y") and part:
            other = ("y_" if prefix == "x" else "x_") + part
            if other not in arrays:
                raise DataError(f"{path}: has {key} but no {other}")
            if part not in _PARTS:
                raise DataError(
                    f"{path}: unknown part {key!r}; slimforge reads x_/y_ train, val and test"
                )
    if "x_train" not in arrays:
        raise DataError(f"{path}: no x_train/y_train arrays (found {', '.join(sorted(arrays))})")
    class_names = _class_names(path, arrays)
    images: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for part in _PARTS:
        if f"x_{part}" not in arrays:
            continue
        images[part] = to_nchw(arrays[f"x_{part}"], f"{path}: x_{part}")
        if len(images[part]) == 0:
            raise DataError(f"{path}: x_{part} holds no images")
        labels[part] = check_labels(
            arrays[f"y_{part}"],
            len(images[part]),
            f"{path}: y_{part}",
            None if class_names is None else len(class_names),
        )
        if images[part].shape[1:] != images["train"].shape[1:]:
            raise DataError(
                f"{path}: x_{part} images are {_describe(images[part])} but x_train images are "
                f"{_describe(images['train'])}; all parts must have one size"
            )
    if class_names is None:
        num_classes = max(int(y.max()) for y in labels.values()) + 1
        total = sum(len(y) for y in labels.values())
        check_class_count(num_classes, total, f"{path}: y_train/y_val/y_test")
        class_names = tuple(str(i) for i in range(num_classes))
    parts = {part: ArrayDataset(images[part], labels[part], class_names) for part in images}
    return SourceSplits(train=parts["train"], val=parts.get("val"), test=parts.get("test"))


def _class_names(path: str, arrays: dict[str, np.ndarray]) -> tuple[str, ...] | None:
    for key in _NAMES_KEYS:
        if key in arrays:
            names = arrays[key]
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
                raise DataError(
                    f"{path}: {key} must be a 1-D array of strings, got {names.dtype} {names.shape}"
                )
            check_class_count(len(names), 0, f"{path}: {key}")
            return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
    return None


def _check_headers(path: Path) -> None:
    """Refuse an array whose ``.npy`` header claims more bytes than the archive holds for it.

    numpy allocates what the header claims before reading the data, so a 1 KB archive claiming
    a (10**6, 10**6) array would exhaust memory; here the claim is compared with the member's
    size first (and the total with this machine's memory), nothing allocated.
    """
    fmt = np.lib.format
    claimed = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[: -len(".npy")]
                with archive.open(info) as fh:
                    version = fmt.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = fmt.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = fmt.read_array_header_2_0(fh)
                    else:
                        raise DataError(
                            f"{path}: {name} is a .npy of format version {version}, which slimforge does not "
                            "read; save it with numpy.savez"
                        )
                    held = info.file_size - fh.tell()
                if dtype.hasobject:
                    continue  # refused below, before anything is unpickled
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes > held:
                    raise DataError(
                        f"{path}: {name} claims shape {tuple(shape)} of {dtype} ({nbytes:,} bytes) but holds "
                        f"{max(held, 0):,} bytes; the file is damaged, write it again with numpy.savez"
                    )
                claimed += nbytes
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:  # a header numpy cannot parse
        first = (str(exc).strip().splitlines() or ["bad header"])[0]
        raise DataError(f"{path}: not a readable .npz archive ({first})") from None
    memory = _physical_memory()
    if memory and claimed > memory:
        raise DataError(
            f"{path}: its arrays take {claimed:,} bytes, more than this machine's {memory:,} bytes "
            "of memory; use a smaller data set"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _describe(images: np.ndarray) -> str:
    _, c, h, w = images.shape
    return f"{h}x{w} with {c} channel(s)"
