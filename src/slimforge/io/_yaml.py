"""YAML for configs, safely: no code, no aliases (a 500-byte alias bomb expands to gigabytes), bounded size."""

from __future__ import annotations

from typing import Any

from slimforge.errors import InvalidInputError

__all__ = ["MAX_YAML_BYTES", "YamlError", "load_yaml"]

#: a config is a page of settings; anything this large is not one.
MAX_YAML_BYTES = 1_000_000


class YamlError(InvalidInputError):
    """Text that is not a YAML document slimforge accepts; says where and why."""


def load_yaml(data: str | bytes, *, source: str = "the YAML text") -> Any:
    """Parse one YAML document with ``yaml.safe_load`` after refusing aliases and oversized text.

    Args:
        data: the document; bytes must be UTF-8.
        source: how messages name it (a file path).
    """
    import yaml

    if isinstance(data, bytes):
        if len(data) > MAX_YAML_BYTES:
            raise YamlError(f"{source} is {len(data):,} bytes; a config is at most {MAX_YAML_BYTES:,}")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(
                f"{source} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); save it as UTF-8"
            ) from None
    if len(data) > MAX_YAML_BYTES:
        raise YamlError(f"{source} is {len(data):,} characters; a config is at most {MAX_YAML_BYTES:,}")
    try:
        for event in yaml.parse(data, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise YamlError(
                    f"{source} uses a YAML alias (*{event.anchor}) at line {mark.line + 1}; "
                    "write the value out instead (aliases are refused: they can expand without bound)"
                )
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise YamlError(f"{source} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
