"""The latency lookup table: its entries, its prediction of a genome's latency, its CSV file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.io import JsonRecord, atomic_write_text, read_text_file

__all__ = ["LUT_FORMAT", "STATISTICS", "LatencyTable", "LutEntry", "LutError", "read_lut", "space_from_table"]

LUT_FORMAT = "slimforge.lut/1"
_COLUMNS = (
    "part",
    "layer",
    "choice",
    "token",
    "input_shape",
    "latency_ms",
    "latency_ms_iqr",
    "latency_ms_min",
    "num_runs",
    "stable",
)
_PART_ORDER = ("call", "stem", "layer", "tail")
#: what :meth:`LatencyTable.predict` can sum: the entries' medians (the contract) or their minima.
STATISTICS = ("median", "min")
_REQUIRED_KEYS = (
    "format",
    "space",
    "space_options",
    "device",
    "runtime",
    "threads",
    "input_shape",
    "num_classes",
)


class LutError(SlimforgeError, ValueError):
    """A lookup table that cannot be read or does not fit the genome asked about."""


@dataclass(frozen=True)
class LutEntry(JsonRecord):
    """One measured part: the stem, one choice of one layer, or the tail."""

    part: str
    layer: int | None
    choice: int | None
    token: str
    input_shape: tuple[int, ...]
    latency_ms: float
    latency_ms_iqr: float
    latency_ms_min: float
    num_runs: int
    stable: bool


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """A latency lookup table of one space on one device, and the conditions it was measured under.

    Attributes:
        space: the space's registry name.
        space_options: constructor options of the space (``get_space(space, **space_options)``).
        header: every ``# key: value`` of the file (device, runtime, threads, input shape, ...).
        entries: the measured parts.
    """

    space: str
    space_options: dict[str, Any]
    header: dict[str, str]
    entries: tuple[LutEntry, ...]
    _fixed: tuple[LutEntry, ...] = field(init=False, repr=False)
    _call: LutEntry | None = field(init=False, repr=False)
    _layers: tuple[dict[int, LutEntry], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        width = 1 + max((e.layer for e in self.entries if e.part == "layer"), default=-1)
        layers: list[dict[int, LutEntry]] = [{} for _ in range(width)]
        for e in self.entries:
            if e.part == "layer":
                layers[e.layer][e.choice] = e  # type: ignore[index]
        object.__setattr__(self, "_fixed", tuple(e for e in self.entries if e.part in ("stem", "tail")))
        object.__setattr__(self, "_call", next((e for e in self.entries if e.part == "call"), None))
        object.__setattr__(self, "_layers", tuple(layers))

    @property
    def num_genes(self) -> int:
        """Genome length the table answers for."""
        return len(self._layers)

    @property
    def num_unstable(self) -> int:
        """Entries whose measurement stayed above the protocol's spread threshold."""
        return sum(not e.stable for e in self.entries)

    def predict(self, genome: Sequence[int], statistic: str = "median") -> float:
        """Predicted latency (ms) of a genome: fixed parts plus the chosen entry of each layer.

        Every part measured alone paid the runtime's per-call overhead (the ``call`` entry: a
        no-op model at the network's input) once, the whole network pays it once: so it is
        subtracted for every part but one.

        Args:
            genome: one choice index per layer.
            statistic: sum the entries' ``median`` (the measurement contract's statistic) or their
                ``min`` (closer to an idle machine's figure when the table was measured under load).
        """
        if statistic not in STATISTICS:
            raise InvalidInputError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
        values = list(genome)
        if len(values) != self.num_genes:
            raise LutError(
                f"genome {tuple(values)!r} has {len(values)} genes; "
                f"this {self.space} table has {self.num_genes}"
            )
        parts = list(self._fixed)
        for i, choice in enumerate(values):
            try:
                entry = self._layers[i][int(choice)]
            except (KeyError, TypeError, ValueError):
                known = ", ".join(str(c) for c in sorted(self._layers[i]))
                raise LutError(
                    f"genome {tuple(values)!r}: layer {i} has no entry for choice {choice!r} (known: {known})"
                ) from None
            if entry.num_runs:  # the identity (0 runs) runs nothing and pays no call
                parts.append(entry)

        def figure(e: LutEntry) -> float:
            return e.latency_ms if statistic == "median" else e.latency_ms_min

        total = sum(figure(e) for e in parts)
        if self._call is not None:
            total -= (len(parts) - 1) * figure(self._call)
        return total * self.scale(statistic) + self.offset_ms(statistic)

    @property
    def runtime(self) -> str:
        """The runtime the table was measured with (``onnxruntime``, ``litert``, ...)."""
        return self.header.get("runtime", "")

    def check_runtime(self, runtime: str, where: str = "the lookup table") -> None:
        """Raise a one-line :class:`LutError` unless the table was measured with ``runtime``.

        Latencies of one runtime say little about another's (their kernels and fusions differ),
        so a table is used only for the runtime it was measured with.
        """
        if self.runtime != runtime:
            device = self.header.get("device", "?")
            raise LutError(
                f"lookup table {where} was measured with {self.runtime or 'an unrecorded runtime'} "
                f"{self.header.get('runtime_version', '')} on {device}, not with {runtime}; build one for "
                f"{runtime} with `slimforge lut build --device {_device_for(runtime)} --out FILE`"
            )

    def scale(self, statistic: str = "median") -> float:
        """The calibration factor predictions are multiplied by (1.0 for an uncalibrated table)."""
        return float(self.header.get(f"calibration_scale_{statistic}", 1.0))

    def offset_ms(self, statistic: str = "median") -> float:
        """The calibration offset (ms) added after the scale (0.0 unless calibrated ``affine``)."""
        return float(self.header.get(f"calibration_offset_ms_{statistic}", 0.0))

    def extreme_genome(self, dearest: bool = False) -> tuple[int, ...]:
        """The genome the table predicts cheapest (or, with ``dearest``, dearest): each layer's extreme entry."""
        call = self._call.latency_ms if self._call is not None else 0.0

        def cost(e: LutEntry) -> float:
            return e.latency_ms - call if e.num_runs else 0.0

        pick = max if dearest else min
        return tuple(pick(layer, key=lambda c: cost(layer[c])) for layer in self._layers)

    def predict_many(self, genomes: Sequence[Sequence[int]], statistic: str = "median") -> np.ndarray:
        """:meth:`predict` of each genome, as a float64 array."""
        return np.asarray([self.predict(g, statistic) for g in genomes], dtype=np.float64)

    def to_csv(self) -> str:
        """The table as CSV text, header comments first."""
        out = io.StringIO()
        for key, value in self.header.items():
            out.write(f"# {key}: {value}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for e in self.entries:
            writer.writerow(
                [
                    e.part,
                    "" if e.layer is None else e.layer,
                    "" if e.choice is None else e.choice,
                    e.token,
                    format_shape(e.input_shape),
                    repr(e.latency_ms),
                    repr(e.latency_ms_iqr),
                    repr(e.latency_ms_min),
                    e.num_runs,
                    "true" if e.stable else "false",
                ]
            )
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the CSV atomically (unique temporary name, fsync, rename); returns the path."""
        return atomic_write_text(path, self.to_csv())


def read_lut(path: str | os.PathLike, runtime: str | None = None) -> LatencyTable:
    """Read a table written by :meth:`LatencyTable.save`.

    Args:
        path: the CSV file.
        runtime: the runtime the caller needs figures of (``litert``); a table measured with
            another is refused (:meth:`LatencyTable.check_runtime`). None accepts any.

    Raises:
        LutError: (one line, naming the file and the line) a missing file, header line or column,
            a malformed entry, or a table of another runtime.
    """
    path = Path(path)
    where = f"lookup table {path}"
    text = read_text_file(
        path, where, LutError, f"build one with `slimforge lut build --space mbv2 --out {path}`"
    )
    header: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    missing = [k for k in _REQUIRED_KEYS if k not in header]
    if missing:
        raise LutError(
            f"{where}: missing header line(s) {', '.join(f'# {k}: ...' for k in missing)}; "
            "rebuild it with `slimforge lut build`"
        )
    if header["format"] != LUT_FORMAT:
        raise LutError(
            f"{where}: format {header['format']!r} is not {LUT_FORMAT!r}; rebuild it with this slimforge"
        )
    try:
        options = json.loads(header["space_options"])
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise LutError(f"{where}: space_options {header['space_options']!r} is not a JSON object")
    reader = csv.DictReader(body)
    columns = [c.strip() for c in reader.fieldnames or []]
    absent = [c for c in _COLUMNS if c not in columns]
    if absent:
        raise LutError(f"{where}: missing column(s) {', '.join(absent)} (expected {','.join(_COLUMNS)})")
    entries = []
    for number, row in enumerate(reader, start=2):
        entries.append(_entry(row, f"{where}: data line {number}"))
    if not entries:
        raise LutError(f"{where}: no entries")
    table = LatencyTable(header["space"], options, header, tuple(entries))
    for i, layer in enumerate(table._layers):
        if not layer:
            raise LutError(f"{where}: layer {i} has no entries")
    if not any(e.part == "stem" for e in entries) or not any(e.part == "tail" for e in entries):
        raise LutError(f"{where}: the stem or tail entry is missing")
    if sum(e.part == "call" for e in entries) > 1:
        raise LutError(f"{where}: more than one call entry")
    if runtime is not None:
        table.check_runtime(runtime, str(path))
    return table


def _entry(row: dict[str, str], where: str) -> LutEntry:
    try:
        part = row["part"].strip()
        if part not in _PART_ORDER:
            raise ValueError(f"part {part!r} is not one of {', '.join(_PART_ORDER)}")
        layer = int(row["layer"]) if part == "layer" else None
        choice = int(row["choice"]) if part == "layer" else None
        figures = [float(row[c]) for c in ("latency_ms", "latency_ms_iqr", "latency_ms_min")]
        if not all(math.isfinite(v) and v >= 0 for v in figures):
            raise ValueError(
                f"latency_ms / latency_ms_iqr / latency_ms_min {figures} must be finite and >= 0"
            )
        if (layer is not None and layer < 0) or (choice is not None and choice < 0):
            raise ValueError("layer and choice must be >= 0")
        stable = row["stable"].strip().lower()
        if stable not in ("true", "false"):
            raise ValueError(f"stable {row['stable']!r} is not true or false")
        return LutEntry(
            part=part,
            layer=layer,
            choice=choice,
            token=row["token"].strip(),
            input_shape=parse_input_shape(row["input_shape"]),
            latency_ms=figures[0],
            latency_ms_iqr=figures[1],
            latency_ms_min=figures[2],
            num_runs=int(row["num_runs"]),
            stable=stable == "true",
        )
    except (ValueError, TypeError, AttributeError, KeyError, SlimforgeError) as exc:
        raise LutError(f"{where}: {exc}") from None


def _device_for(runtime: str) -> str:
    return {"onnxruntime": "local-cpu", "torch": "local-torch"}.get(runtime, f"local-{runtime}")


def space_from_table(table: LatencyTable) -> Any:
    """The space a table was built for (``get_space(table.space, **table.space_options)``)."""
    from slimforge.spaces import get_space

    return get_space(table.space, **table.space_options)
