"""The run config's schema machinery: frozen dataclasses built from plain mappings, and their reference.

:func:`build_dataclass` converts parsed YAML by each field's type hint and names the key, the bad
value and what is allowed; :func:`explain_dataclass` writes a dataclass's keys as Markdown tables
(``docs/config.md``). The sections themselves live in :mod:`slimforge.runs.config`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from slimforge.errors import InvalidInputError, close_matches

__all__ = ["ConfigError", "build_dataclass", "explain_dataclass", "plain"]


class ConfigError(InvalidInputError):
    """A config key with a bad value, an unknown key, or a file that is not a YAML mapping."""


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """``cls`` from a plain mapping at ``path`` (``""`` for the top): every value converted by its field's hint."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'the config'} must be a mapping of settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = str(unknown[0])
        hint = close_matches(key, fields)
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise ConfigError(
            f"unknown key {_join(path, key)!r}{did_you_mean} (allowed: {', '.join(fields)})"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, _join(path, name), fields[name])
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None


def _convert(hint: Any, value: Any, key: str, f: dataclasses.Field) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key, f)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, key)
    if origin is tuple:
        item = args[0]
        if isinstance(value, (str, int, float)) and not dataclasses.is_dataclass(item):
            value = [v.strip() for v in value.split(",")] if isinstance(value, str) else [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(_convert(item, v, f"{key}[{i}]", f) for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return value.strip()
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # a bug in the schema, not input


def explain_dataclass(cls: type, prefix: str, lines: list[str]) -> None:
    """Append the Markdown tables of ``cls``'s keys (type, default, allowed values), then its sections'."""
    import inspect

    hints = typing.get_type_hints(cls)
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines += [f"## `{prefix.rstrip('.') or 'top level'}`", "", doc, "", "| key | type | default | allowed |",
              "|---|---|---|---|"]
    nested = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            nested.append((hint, f"{prefix}{f.name}."))
            lines.append(f"| `{prefix}{f.name}` | section | see below | |")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(default) or (isinstance(default, tuple) and default and dataclasses.is_dataclass(default[0])):
            default = plain(dataclasses.asdict(default) if dataclasses.is_dataclass(default) else [dataclasses.asdict(d) for d in default])
        choices = f.metadata.get("choices")
        lines.append(f"| `{prefix}{f.name}` | {_type_name(hint)} | `{plain(default)!r}` | "
                     f"{', '.join(choices) if choices else ''} |")
    lines.append("")
    for hint, sub in nested:
        explain_dataclass(hint, sub, lines)


def _type_name(hint: Any) -> str:
    text = str(hint).replace("typing.", "")
    for short in ("str", "int", "float", "bool", "dict", "tuple"):
        text = text.replace(f"<class '{short}'>", short)
    return text.replace("slimforge.runs.config.DeviceConfig", "device (see devices[])").replace("|", "or")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def plain(value: Any) -> Any:
    """``value`` with tuples as lists, nested (YAML/JSON-ready)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
