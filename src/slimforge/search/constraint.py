"""Hard constraints on a metric, parsed from strings such as ``"latency_ms <= 5"``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from slimforge.errors import InvalidInputError

__all__ = ["Constraint", "finite_number"]

_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|=<|=>|<|>|==|=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``; both bounds are inclusive.

    The violation of a value is its distance beyond the bound divided by ``|bound|`` (by 1
    when the bound is 0), so violations of metrics with different units add up sensibly.
    """

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``"latency_ms <= 5"`` / ``"num_params<=1e6"`` / ``"accuracy >= 90"``."""
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInputError(
                f"cannot read constraint {text!r}; write METRIC <= NUMBER or METRIC >= NUMBER, "
                "e.g. 'latency_ms <= 5'"
            )
        metric, op, number = match.groups()
        if op not in ("<=", ">="):
            raise InvalidInputError(
                f"constraint {text!r} uses {op!r}; constraints are inclusive bounds, use <= or >="
            )
        bound = finite_number(number)
        if bound is None:
            raise InvalidInputError(f"constraint {text!r}: the bound {number!r} is not a finite number")
        return cls(metric, op, bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:.12g}"

    def violation(self, value: float) -> float:
        """How far ``value`` lies beyond the bound (relative to it); 0 when it holds, inf for NaN."""
        if math.isnan(value):
            return math.inf
        excess = value - self.bound if self.op == "<=" else self.bound - value
        return max(0.0, excess) / (abs(self.bound) or 1.0)


def finite_number(text: str) -> float | None:
    """The finite number ``text`` spells, or None (a word, ``nan``, ``inf``)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
