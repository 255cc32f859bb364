"""What the benchmarks' settings share: named presets with overrides, list fields, a JSON round-trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from slimforge.errors import InvalidInputError, UnknownNameError

__all__ = ["BenchConfig", "names"]

_C = TypeVar("_C", bound="BenchConfig")


def names(value: Any) -> tuple[str, ...]:
    """A list setting as a tuple of names: a comma-separated string or a sequence, blanks dropped."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value if str(v).strip())


class BenchConfig:
    """Base of a benchmark's settings, a frozen dataclass with ``preset`` and ``val_fraction`` fields.

    Subclasses set :attr:`bench` (the command, for errors) and :attr:`presets` (name -> settings).
    """

    #: the benchmark's command in words (``bench codesign``), for errors.
    bench: ClassVar[str]
    #: the named settings ``from_preset`` starts from.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]

    def _check_preset(self) -> None:
        preset = getattr(self, "preset")
        if preset not in self.presets:
            raise UnknownNameError(f"unknown preset {preset!r}; use one of {', '.join(self.presets)}")

    def _check_val_fraction(self) -> None:
        value = getattr(self, "val_fraction")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise InvalidInputError(
                f"{self.bench}: val_fraction must lie strictly between 0 and 1, got {value!r}"
            )
        object.__setattr__(self, "val_fraction", float(value))

    @classmethod
    def _from_preset(cls: type[_C], preset: str, overrides: Mapping[str, Any]) -> _C:
        """The ``preset``'s settings with ``overrides`` (None values are ignored)."""
        if preset not in cls.presets:
            raise UnknownNameError(f"unknown preset {preset!r}; use one of {', '.join(cls.presets)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(given) - known)
        if unknown:
            raise InvalidInputError(f"{cls.bench} has no setting {', '.join(unknown)}")
        return cls(**{**cls.presets[preset], **given, "preset": preset})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
