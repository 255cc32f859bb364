"""JSON-ready dicts of the supernet's result records, where a NaN figure means 'not measured'."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["json_ready"]


def json_ready(record: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON-ready dict: tuples become lists, NaN and inf become None."""
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(record).items():
        if isinstance(value, tuple):
            value = list(value)
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out
