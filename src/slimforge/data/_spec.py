"""Data specs: ``SCHEME:PATH`` strings such as ``npz:../shared/data/cifar10_subset.npz`` or ``digits``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from slimforge.data._errors import DataError
from slimforge.data._registry import LOADERS
from slimforge.errors import UnknownNameError

__all__ = ["DataSpec", "parse_data_spec"]


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: the loader's scheme and the path it reads (None for built-in data)."""

    scheme: str
    path: str | None = None

    def __str__(self) -> str:
        return self.scheme if self.path is None else f"{self.scheme}:{self.path}"


def _hint_for_bare_path(text: str) -> str:
    if text.lower().endswith(".npz"):
        return f"; write npz:{text}"
    if os.path.isdir(os.path.expanduser(text)):
        return f"; write folder:{text} (one sub-folder per class) or cifar10:{text} / cifar100:{text}"
    return ""


def parse_data_spec(text: str | DataSpec) -> DataSpec:
    """Parse ``SCHEME:PATH`` (or a bare scheme such as ``digits``) and check the scheme is known.

    The scheme is everything before the first colon, so paths may contain colons. Whether the path
    exists is checked when the data set is loaded, not here.
    """
    if isinstance(text, DataSpec):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"empty data spec {text!r}; write SCHEME:PATH, e.g. npz:data.npz, or digits")
    text = text.strip()
    from slimforge.io import is_reference

    scheme_part = text.partition(":")[0].strip().lower()
    if scheme_part not in LOADERS and is_reference(text):
        return DataSpec("python", text)  # data.py:load or mypkg.data:load: a function of the user's
    scheme, sep, path = text.partition(":")
    scheme = scheme.strip().lower()
    try:
        loader = LOADERS.get(scheme)
    except UnknownNameError as exc:
        hint = _hint_for_bare_path(text) if not sep else ""
        if hint:
            raise DataError(f"data spec {text!r} names no scheme{hint}") from None
        raise DataError(f"data spec {text!r}: {exc}") from None
    if loader.needs_path and not path:
        raise DataError(f"data spec {text!r} names no {loader.path_kind}; write {scheme}:PATH")
    if not loader.needs_path and path:
        raise DataError(f"data spec {text!r}: {scheme!r} is built in and takes no path; write {scheme}")
    return DataSpec(scheme, path or None)
