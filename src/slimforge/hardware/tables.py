"""Device tables: per-architecture latency (and energy) measured on a real device.

A table is a CSV with one row per architecture of a tabular space and the columns ``index``,
``arch`` (the space's standard string), ``latency_ms`` and optionally ``energy_mj``, as in the
HW-NAS-Bench Raspberry Pi 5 tables under ``shared/data/nb201``. :func:`read_device_table` checks
every row and names the file, the row and what is wrong when something is.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slimforge.errors import SlimforgeError

__all__ = ["DeviceTable", "DeviceTableError", "read_device_table"]

_REQUIRED = ("index", "arch", "latency_ms")


class DeviceTableError(SlimforgeError, ValueError):
    """A device table that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True, eq=False)
class DeviceTable:
    """The rows of one device table, as parallel numpy arrays (row order of the file).

    Attributes:
        path: where the table was read from.
        space: registry name of the search space of ``arch`` ("nb201").
        arch: architecture strings, shape (n,).
        index: the space's architecture indices, int64, shape (n,).
        latency_ms: measured latency per inference in milliseconds, float64, shape (n,).
        energy_mj: measured energy per inference in millijoules, or None when the file has none.
        genomes: parsed genomes, int64, shape (n, genes).
    """

    path: str
    space: str
    arch: np.ndarray
    index: np.ndarray
    latency_ms: np.ndarray
    energy_mj: np.ndarray | None
    genomes: np.ndarray
    _rows: dict[tuple[int, ...], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", {tuple(int(v) for v in g): r for r, g in enumerate(self.genomes)})

    def __len__(self) -> int:
        return len(self.arch)

    def row(self, arch: str | Sequence[int]) -> int:
        """Row of an architecture given as its string or its genome; an absent one raises."""
        if isinstance(arch, str):
            from slimforge.spaces import get_space

            genome = get_space(self.space).from_string(arch)
        else:
            genome = tuple(int(v) for v in arch)
        try:
            return self._rows[genome]
        except KeyError:
            raise DeviceTableError(f"device table {self.path}: no row for architecture {arch!r}") from None

    def rows_of(self, genomes: np.ndarray) -> np.ndarray:
        """Rows of many genomes at once, int64; the first absent one raises."""
        rows = [
            self._rows.get(tuple(int(v) for v in g), -1)
            for g in np.asarray(genomes).reshape(len(genomes), -1)
        ]
        if -1 in rows:
            missing = np.asarray(genomes)[rows.index(-1)]
            raise DeviceTableError(
                f"device table {self.path}: no row for architecture {tuple(int(v) for v in missing)}"
            )
        return np.asarray(rows, dtype=np.int64)

    def latency_of(self, arch: str | Sequence[int]) -> float:
        """Measured latency (ms) of an architecture given as its string or its genome."""
        return float(self.latency_ms[self.row(arch)])

    def shares_class_measurements(self) -> bool:
        """Whether the table looks measured once per NB201 isomorphism class (HW-NAS-Bench style).

        True when some class has several rows and every class holds a single latency; a table
        measured network by network (different figures within a class) gives False.
        """
        if self.space != "nb201":
            return False
        from slimforge.hardware.predictors._features import isomorphism_key

        figures: dict[str, set[float]] = {}
        for genome, latency in zip(self.genomes.tolist(), self.latency_ms.tolist()):
            figures.setdefault(isomorphism_key(genome), set()).add(latency)
        return len(figures) < len(self) and all(len(v) == 1 for v in figures.values())

    def timed_genomes(self) -> np.ndarray:
        """For each row, the genome of the network whose measurement the row carries.

        HW-NAS-Bench (and the NAS-Bench-201 tables built like it) measured one network per
        NAS-Bench-201 isomorphism class and copied that figure to every cell of the class: in the
        Raspberry Pi 5 tables every class holds one latency, and the figure is the one of the
        class's lowest-index cell (the benchmark's ``to_unique_str(consider_zero=True)`` classes;
        see :func:`slimforge.hardware.predictors.isomorphism_key`). A predictor that reads a
        row's latency as that of the timed network learns what the device really ran.
        """
        if self.space != "nb201":
            raise DeviceTableError(
                f"device table {self.path}: timed genomes are defined for nb201 tables only"
            )
        from slimforge.hardware.predictors._features import isomorphism_key

        first: dict[str, int] = {}
        for r in np.argsort(self.index, kind="stable"):
            first.setdefault(isomorphism_key(self.genomes[r]), int(r))
        return np.stack([self.genomes[first[isomorphism_key(g)]] for g in self.genomes])


def read_device_table(path: str | Path, space: str = "nb201") -> DeviceTable:
    """Read and check a device table CSV (columns index, arch, latency_ms[, energy_mj]).

    Raises:
        DeviceTableError: (one line, naming the file) the file is missing, empty, lacks a column,
            holds a non-numeric or non-positive figure, a duplicate index or architecture, or an
            architecture string the space cannot parse.
    """
    from slimforge.spaces import get_space

    path = Path(path)
    where = f"device table {path}"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames
            rows = list(reader)
    except FileNotFoundError:
        raise DeviceTableError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeviceTableError(f"{where}: cannot be read as CSV ({exc})") from None
    if not columns:
        raise DeviceTableError(
            f"{where}: the file is empty; expected a header {','.join(_REQUIRED)}[,energy_mj]"
        )
    columns = [c.strip() for c in columns]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise DeviceTableError(
            f"{where}: missing column(s) {', '.join(missing)} (found {', '.join(columns)}; "
            f"expected {','.join(_REQUIRED)}[,energy_mj])"
        )
    if not rows:
        raise DeviceTableError(f"{where}: the header is there but there are no rows")
    has_energy = "energy_mj" in columns
    parser = get_space(space)
    archs, indices, latencies, energies, genomes = [], [], [], [], []
    seen_index: dict[int, int] = {}
    seen_arch: dict[tuple[int, ...], int] = {}
    for line, raw in enumerate(rows, start=2):  # line 1 is the header
        row = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k is not None}
        index = _number(row.get("index"), "index", where, line, integer=True)
        latency = _number(row.get("latency_ms"), "latency_ms", where, line)
        energy = _number(row.get("energy_mj"), "energy_mj", where, line) if has_energy else math.nan
        arch = row.get("arch") or ""
        if not arch:
            raise DeviceTableError(f"{where}: line {line}: the arch field is empty")
        try:
            genome = parser.from_string(arch)
        except SlimforgeError as exc:
            raise DeviceTableError(f"{where}: line {line}: unparseable architecture ({exc})") from None
        if index in seen_index:
            raise DeviceTableError(
                f"{where}: line {line}: duplicate index {index} (first on line {seen_index[index]})"
            )
        if genome in seen_arch:
            raise DeviceTableError(
                f"{where}: line {line}: duplicate architecture {arch!r} (first on line {seen_arch[genome]})"
            )
        seen_index[index] = line
        seen_arch[genome] = line
        archs.append(arch)
        indices.append(index)
        latencies.append(latency)
        energies.append(energy)
        genomes.append(genome)
    return DeviceTable(
        path=str(path),
        space=space,
        arch=np.asarray(archs, dtype=object),
        index=np.asarray(indices, dtype=np.int64),
        latency_ms=np.asarray(latencies, dtype=np.float64),
        energy_mj=np.asarray(energies, dtype=np.float64) if has_energy else None,
        genomes=np.asarray(genomes, dtype=np.int64),
    )


def _number(text: str | None, column: str, where: str, line: int, integer: bool = False) -> float:
    if text is None or text == "":
        raise DeviceTableError(f"{where}: line {line}: the {column} field is empty")
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise DeviceTableError(f"{where}: line {line}: {column} {text!r} is not {kind}") from None
    if integer and value < 0:
        raise DeviceTableError(f"{where}: line {line}: {column} {value} must not be negative")
    if not integer and not (math.isfinite(value) and value > 0):
        raise DeviceTableError(f"{where}: line {line}: {column} {text!r} must be a positive finite number")
    return value
