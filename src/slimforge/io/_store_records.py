"""The run store's records and encoding: what a row holds, how values become JSON, and the checks on them."""

from __future__ import annotations

import json
import math
import operator
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = ["EvaluationRecord", "StageRecord", "StoreError", "canonical_json"]


class StoreError(SlimforgeError):
    """A run store that cannot be opened, read or written; the message says which file and why."""


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluated candidate.

    ``key`` is the canonical architecture string of the candidate within its space; ``seq`` is its
    position in the store (assigned by the store, 1-based, in insertion order); ``seconds`` is the
    wall time the evaluation took; ``created_at`` is a Unix time in seconds.
    """

    seq: int
    key: str
    genome: tuple[int, ...]
    objectives: dict[str, float]
    constraints: dict[str, float]
    feasible: bool
    seconds: float
    meta: dict = field(default_factory=dict)
    created_at: float = 0.0

    @classmethod
    def new(
        cls,
        key: str,
        *,
        genome: Sequence[int],
        objectives: Mapping[str, float],
        constraints: Mapping[str, float],
        feasible: bool,
        seconds: float,
        meta: Mapping[str, Any] | None = None,
    ) -> EvaluationRecord:
        """A record not yet stored (``seq`` 0, ``created_at`` now), for :meth:`RunStore.put_evaluations`."""
        return cls(
            seq=0,
            key=_check_key(key),
            genome=_check_genome(genome),
            objectives=_check_floats(objectives, "objective"),
            constraints=_check_floats(constraints, "constraint"),
            feasible=bool(feasible),
            seconds=_check_seconds(seconds),
            meta=dict(meta or {}),
            created_at=time.time(),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the genome as a list)."""
        out = asdict(self)
        out["genome"] = list(self.genome)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            seq=int(data["seq"]),
            key=str(data["key"]),
            genome=tuple(int(g) for g in data["genome"]),
            objectives={str(k): float(v) for k, v in data["objectives"].items()},
            constraints={str(k): float(v) for k, v in data["constraints"].items()},
            feasible=bool(data["feasible"]),
            seconds=float(data["seconds"]),
            meta=dict(data.get("meta") or {}),
            created_at=float(data.get("created_at", 0.0)),
        )


@dataclass(frozen=True)
class StageRecord:
    """Status of one stage of a resumable run; ``updated_at`` is a Unix time in seconds.

    ``fingerprint`` identifies the settings and inputs the stage ran with (empty when unknown),
    so a run can tell a finished stage it may reuse from one whose settings have changed.
    """

    name: str
    status: str
    outputs: dict = field(default_factory=dict)
    updated_at: float = 0.0
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            status=str(data["status"]),
            outputs=dict(data.get("outputs") or {}),
            updated_at=float(data.get("updated_at", 0.0)),
            fingerprint=str(data.get("fingerprint", "")),
        )


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces; the measurement-cache key.

    Tuples and lists give the same text; ``1`` and ``1.0`` do not.
    """
    return _dumps(value, sort_keys=True)


# -- encoding -----------------------------------------------------------------------------------



def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays (and anything else offering tolist/item) become plain JSON values;
    # checked by attribute so this module does not import numpy.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(value: Any, *, what: str = "value", sort_keys: bool = False) -> str:
    try:
        # allow_nan: NaN / Infinity objective values must round-trip; json.loads reads them back.
        return json.dumps(
            value, allow_nan=True, sort_keys=sort_keys, separators=(",", ":"), default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot store {what} as JSON ({exc}); use str/int/float/bool/None, lists and dicts with str keys"
        ) from exc


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"run store keys must be non-empty strings, got {key!r}")
    return key


def _check_genome(genome: Any) -> tuple[int, ...]:
    try:
        return tuple(operator.index(g) for g in genome)
    except TypeError:
        raise InvalidInputError(
            f"a genome must be a sequence of integer choice indices, got {genome!r}"
        ) from None


def _check_floats(values: Any, kind: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{kind}s must be a mapping of name to number, got {values!r}")
    out = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"{kind} names must be strings, got {name!r}")
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{kind} {name!r} must be a number, got {value!r}") from None
    return out


def _check_seconds(seconds: Any) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InvalidInputError(f"evaluation time must be a finite number of seconds >= 0, got {seconds!r}")
    return value


def _hint(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "full" in text:
        return "free some disk space and retry"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "check that you may write the file and its directory"
    if "locked" in text or "busy" in text:
        return "another process holds the store; wait for it or use another run directory"
    return "check the disk and the file"
