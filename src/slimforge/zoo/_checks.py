"""The value tests behind the zoo entry points' argument checks (each entry point words its own error)."""

from __future__ import annotations

import math

__all__ = ["is_fraction", "is_positive_int", "is_positive_number"]


def is_positive_int(value: object) -> bool:
    """An int (not a bool) of at least 1."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def is_positive_number(value: object) -> bool:
    """A finite int or float (not a bool) above 0."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def is_fraction(value: object) -> bool:
    """An int or float (not a bool) in [0, 1): a probability such as a dropout rate."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= value < 1.0
