"""JSON round-trip for slimforge's frozen result dataclasses (one way to serialise them, everywhere)."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slimforge.errors import InvalidInputError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["JsonRecord", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` for strict JSON: NaN and infinities as None (``JSON.parse`` accepts no ``NaN``),
    mappings as dicts with string keys, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class JsonRecord:
    """Mixin for frozen dataclasses: ``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json``.

    Tuples become JSON lists and nested records become objects; ``from_dict`` rebuilds both from
    the field annotations, so ``type(r).from_json(r.to_json()) == r``.
    """

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-compatible Python values."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, indent: int | None = 2) -> str:
        """The record as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a record from :meth:`to_dict` output; unknown or missing keys raise."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
        unknown = sorted(set(data) - {f.name for f in fields})
        if unknown:
            raise InvalidInputError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
        missing = [
            f.name
            for f in fields
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise InvalidInputError(f"{cls.__name__} is missing field(s) {', '.join(missing)}")
        return cls(**{f.name: _decode(hints[f.name], data[f.name]) for f in fields if f.name in data})

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Rebuild a record from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def _encode(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value))
    if isinstance(tp, type) and issubclass(tp, JsonRecord):
        return tp.from_dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
