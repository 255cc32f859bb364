"""``python:REF`` (or just ``data.py:load`` / ``mypkg.data:load``): a data set from a function of your own.

The function takes no arguments and returns a mapping like an ``npz`` archive: ``x_train`` /
``y_train`` and optionally ``x_val``/``y_val``, ``x_test``/``y_test`` (uint8 images, NCHW, NHWC or
(N, H, W); integer labels) and ``class_names``. It is imported only because the spec names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._errors import DataError
from slimforge.data._npz import splits_from_arrays

__all__ = ["PythonLoader"]


class PythonLoader(DatasetLoader):
    """Calls the referenced function and checks what it returns as :class:`NpzLoader` checks an archive."""

    path_kind = "reference (path/to/file.py:function or package.module:function)"

    def load(self, path: str | None = None) -> SourceSplits:
        if not path:
            raise DataError("python: needs a reference, e.g. python:data.py:load_arrays")
        return self._load(path)  # type: ignore[arg-type] - a reference, not a filesystem path

    def _load(self, path: Path | str | None) -> SourceSplits:
        from slimforge.io import import_reference

        from slimforge.data._registry import LOADERS
        from slimforge.io import ReferenceError

        ref = str(path)
        try:
            function = import_reference(ref, what="data set")
        except ReferenceError as exc:
            scheme = ref.partition(":")[0]
            if ".py" not in scheme and "." not in scheme and "no module named" in str(exc):
                raise DataError(
                    f"data spec {ref!r}: unknown data scheme {scheme!r} (known: {', '.join(LOADERS.list())}), and no "
                    f"module {scheme!r} to import a data function from"
                ) from None
            raise
        if not callable(function):
            raise DataError(f"data set {ref!r} is a {type(function).__name__}, not a function returning arrays")
        try:
            arrays = function()
        except Exception as exc:  # noqa: BLE001 - user code: one line naming the reference
            text = (str(exc).strip().splitlines() or [""])[0]
            raise DataError(f"data set {ref!r} raised {type(exc).__name__}: {text}") from None
        if not isinstance(arrays, Mapping):
            raise DataError(f"data set {ref!r} returned a {type(arrays).__name__}, not a mapping of arrays "
                            "(x_train, y_train, ...)")
        converted = {}
        for key, value in arrays.items():
            try:
                converted[str(key)] = np.asarray(value)
            except (TypeError, ValueError) as exc:
                raise DataError(f"data set {ref!r}: {key} is not an array ({exc})") from None
            if converted[str(key)].dtype == object:
                raise DataError(f"data set {ref!r}: {key} is an object array; give numeric images and labels")
        return splits_from_arrays(converted, f"data set {ref}")
