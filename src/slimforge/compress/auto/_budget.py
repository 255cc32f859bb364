"""Cost budgets of the automated compression searches: ``macs=0.5``, ``latency=0.7``, ``bytes=60000``, ...

A budget is one ``KEY=VALUE``. The key says which cost it bounds and how the value reads
(:data:`BUDGET_KEYS`): ``macs``, ``latency``, ``size`` and ``bitops`` are fractions of the reference model's
cost (the model being compressed, or for the joint search the space's largest network at 8 bits);
``latency_ms`` and ``bytes`` are absolute; ``bits`` is the size of the reference with every
quantizable layer at that many bits (``bits=4``: "as small as uniform 4-bit"). Each search accepts
the keys that make sense for it and names the others in its error.

Users budget in milliseconds, so a search may read a bare value as its default key: for pruning a
bare fraction (``0.7``) is ``latency=0.7``, the original's latency measured on the target runtime,
and ``2.5ms`` is ``latency_ms=2.5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slimforge.errors import InvalidInputError, UnknownNameError, close_matches
from slimforge.io import JsonRecord
from slimforge.registry import Registry

__all__ = ["BUDGET_KEYS", "Budget", "BudgetKey", "parse_budget"]


@dataclass(frozen=True)
class BudgetKey:
    """What one budget key bounds: the search ``metric``, how its value reads, its allowed range."""

    metric: str
    kind: str  # "fraction" of the reference, "absolute", or "bits" (size of uniform k-bit)
    low: float
    high: float
    low_open: bool
    example: str
    meaning: str


#: budget key -> what it bounds. ``metric`` is the name of the search metric it constrains.
BUDGET_KEYS: Registry[BudgetKey] = Registry("budget key")
BUDGET_KEYS.register(
    "macs", BudgetKey("macs", "fraction", 0.0, 1.0, True, "macs=0.5", "MACs as a fraction of the original's")
)
BUDGET_KEYS.register(
    "latency_ms",
    BudgetKey(
        "latency_ms",
        "absolute",
        0.0,
        math.inf,
        True,
        "latency_ms=2.5",
        "ONNX Runtime latency (1 thread, batch 1)",
    ),
)
BUDGET_KEYS.register(
    "latency",
    BudgetKey(
        "latency_ms",
        "fraction",
        0.0,
        1.0,
        True,
        "latency=0.7",
        "ONNX Runtime latency as a fraction of the original's, measured the same way on this machine",
    ),
)
BUDGET_KEYS.register(
    "bytes", BudgetKey("bytes", "absolute", 0.0, math.inf, True, "bytes=60000", "weight bytes")
)
BUDGET_KEYS.register(
    "size",
    BudgetKey(
        "bytes", "fraction", 0.0, 1.0, True, "size=0.2", "weight bytes as a fraction of the float32 original"
    ),
)
BUDGET_KEYS.register(
    "bits",
    BudgetKey(
        "bytes", "bits", 2.0, 8.0, False, "bits=4", "weight bytes of the same model at uniform BITS bits"
    ),
)
BUDGET_KEYS.register(
    "bitops",
    BudgetKey(
        "bitops",
        "fraction",
        0.0,
        1.0,
        True,
        "bitops=0.3",
        "BitOps (MACs x weight bits x activation bits) as a fraction of the reference's",
    ),
)


@dataclass(frozen=True)
class Budget(JsonRecord):
    """A parsed budget: the key as written, its value, and the search metric it bounds."""

    key: str
    value: float
    metric: str
    kind: str

    @property
    def text(self) -> str:
        """The budget as written on the command line."""
        return f"{self.key}={self.value:g}"

    def bound(self, reference: float) -> float:
        """The absolute bound on :attr:`metric`: ``value`` times ``reference`` for fractions, else ``value``.

        For ``bits`` the caller passes the reference model's bytes at uniform ``value`` bits and gets it back.
        """
        if self.kind == "fraction":
            return self.value * reference
        return reference if self.kind == "bits" else self.value

    def reachable(self, cost: float, reference: float) -> str:
        """The smallest budget meeting ``cost``, in this budget's own key where it can be (rounded up).

        A ``bits`` budget is named in ``bytes`` (uniform k-bit sizes are steps, not a scale).
        """
        if self.kind == "fraction":
            return f"{self.key}={math.ceil(cost / reference * 1e4) / 1e4:g}"
        if self.kind == "bits":
            return f"bytes={math.ceil(cost)}"
        return f"{self.key}={math.ceil(cost * 1e3) / 1e3:g}"


def _bare(text: str, allowed: Sequence[str], default_key: str | None) -> str:
    """``text`` with its key filled in when it is a bare value (``0.7``, ``2.5ms``) and a default exists."""
    raw = text.strip()
    if raw.lower().endswith("ms") and "latency_ms" in allowed:
        return f"latency_ms={raw[:-2].strip()}"
    if default_key is not None:
        try:
            float(raw)
        except ValueError:
            return text
        return f"{default_key}={raw}"
    return text


def parse_budget(
    text: str | Budget, allowed: Sequence[str], *, what: str = "this search", default_key: str | None = None
) -> Budget:
    """Parse ``KEY=VALUE`` into a :class:`Budget`, accepting only the keys in ``allowed``.

    A bare number means ``default_key`` (when given) and ``Xms`` means ``latency_ms=X`` (when allowed).

    Raises:
        InvalidInputError: a malformed text, a value that is not a finite number or is out of range,
            or a key ``what`` does not take; UnknownNameError for a key no search knows.
    """
    if isinstance(text, Budget):
        text = f"{text.key}={text.value!r}"
    if isinstance(text, str) and "=" not in text:
        text = _bare(text, allowed, default_key)
    if not isinstance(text, str) or "=" not in text:
        raise InvalidInputError(
            f"cannot read budget {text!r}; write KEY=VALUE, e.g. {BUDGET_KEYS.get(allowed[0]).example} "
            f"(keys here: {', '.join(allowed)})"
        )
    if "," in text:
        raise InvalidInputError(
            f"budget {text!r} lists several costs; give one KEY=VALUE (keys here: {', '.join(allowed)})"
        )
    key, _, raw = (part.strip() for part in text.partition("="))
    if key not in BUDGET_KEYS:
        hint = close_matches(key, allowed)
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise UnknownNameError(f"unknown budget key {key!r}{did_you_mean} (keys here: {', '.join(allowed)})")
    spec = BUDGET_KEYS.get(key)
    if key not in allowed:
        raise InvalidInputError(
            f"budget {text!r}: {what} does not take {key!r} ({spec.meaning}); use one of {', '.join(allowed)}"
        )
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInputError(f"budget {text!r}: {raw!r} is not a finite number; e.g. {spec.example}")
    below = value <= spec.low if spec.low_open else value < spec.low
    if below or value > spec.high:
        bracket = "(" if spec.low_open else "["
        high = "inf)" if math.isinf(spec.high) else f"{spec.high:g}]"
        raise InvalidInputError(
            f"budget {text!r}: {key} must be in {bracket}{spec.low:g}, {high} ({spec.meaning}); "
            f"e.g. {spec.example}"
        )
    if spec.kind == "bits" and value != int(value):
        raise InvalidInputError(
            f"budget {text!r}: bits must be a whole number of bits from 2 to 8, e.g. bits=4"
        )
    return Budget(key=key, value=value, metric=spec.metric, kind=spec.kind)
