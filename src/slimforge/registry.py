"""A small explicit registry: ``register`` / ``get`` / ``list``.

Every pluggable family (zoo models, spaces, devices, proxies, algorithms, compression methods)
lives in one :class:`Registry`. Entries are registered explicitly by the package that owns them,
never as an import side effect of the entry's own module. An entry may be given lazily as
``"package.module:attr"`` so that listing names does not import heavy modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from slimforge.errors import UnknownNameError, close_matches

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; a duplicate name raises.

    Args:
        kind: what the entries are ("model", "search space", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: T | str) -> T | str:
        """Add ``obj`` (or a lazy ``"module:attr"`` reference) under ``name``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        return obj

    def get(self, name: str) -> T:
        """Return the entry called ``name``; an unknown name raises with close matches."""
        try:
            entry = self._entries[name]
        except KeyError:
            hint = close_matches(name, self._entries)
            did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{did_you_mean} (known: {', '.join(self.list())})"
            ) from None
        if isinstance(entry, str) and ":" in entry:
            module_name, attr = entry.split(":", 1)
            entry = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = entry
        return entry

    def list(self) -> list[str]:
        """Names of every entry, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)
