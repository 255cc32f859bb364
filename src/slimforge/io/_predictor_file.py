"""The file side of a fitted predictor (accuracy or latency): read its JSON, check its header.

Both predictor families write ``{"format": ..., "version": ..., "model": ..., "state": ...}`` with
:func:`~slimforge.io.atomic_write_json`; these two functions are the reading half they share.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slimforge.errors import ModelFileError

__all__ = ["check_predictor_document", "read_predictor_file"]


def read_predictor_file(path: str | Path) -> tuple[Any, str]:
    """The JSON document of predictor file ``path`` and the words naming it (``"predictor file PATH"``).

    Raises:
        ModelFileError: a missing file, or one that is not UTF-8 JSON (one line).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"predictor file {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"predictor file {path}: cannot be read as JSON ({exc})") from None
    return data, f"predictor file {path}"


def check_predictor_document(
    data: Any, fmt: str, version: int, source: str, kind: str, mapping: type = Mapping
) -> None:
    """Raise :class:`ModelFileError` unless ``data`` is a ``mapping`` of format ``fmt`` and ``version``.

    Args:
        kind: the predictor family in words (``"accuracy predictor"``).
        mapping: the type ``data`` must be (``dict`` where only a parsed document is accepted).
    """
    if not isinstance(data, mapping) or data.get("format") != fmt:
        raise ModelFileError(f"{source}: not a slimforge {kind} (no format {fmt!r})")
    if data.get("version") != version:
        raise ModelFileError(
            f"{source}: predictor format version {data.get('version')!r}; this slimforge reads {version}"
        )
