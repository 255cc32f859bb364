"""Architecture tables: CSV files with one row per architecture (``index, arch, <values>...``).

The NAS-Bench-201 reference tables (accuracy, device latency/energy) have this layout. Reading
checks everything up front (columns, numbers, duplicates, coverage of the space), so a search
with a tabular oracle never fails half-way on a bad row.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.search.constraint import finite_number
from slimforge.spaces import Genome, SearchSpace

__all__ = ["ArchTable", "read_arch_table", "write_arch_table"]

# Coverage is checked only where the space can be listed; larger spaces are never tabular.
_MAX_CHECKED_SIZE = 1_000_000


@dataclass(frozen=True)
class ArchTable:
    """A validated architecture table.

    Attributes:
        path: the file it was read from.
        columns: the value columns, in file order.
        rows: genome -> (index, values in ``columns`` order).
    """

    path: str
    columns: tuple[str, ...]
    rows: dict[Genome, tuple[int, tuple[float, ...]]]

    def values(self, genome: Genome) -> dict[str, float]:
        """The row of ``genome`` as column -> value."""
        try:
            _, vals = self.rows[genome]
        except KeyError:
            raise InvalidInputError(f"table {self.path} has no row for genome {genome!r}") from None
        return dict(zip(self.columns, vals))

    def index_of(self) -> dict[int, Genome]:
        """Table index -> genome."""
        return {index: genome for genome, (index, _) in self.rows.items()}


def read_arch_table(
    path: str | os.PathLike,
    space: SearchSpace,
    columns: Sequence[str],
    *,
    what: str = "table",
    optional: Sequence[str] = (),
    complete: bool = True,
) -> ArchTable:
    """Read and validate an architecture table.

    Args:
        path: CSV file with a header ``index,arch,...``.
        space: the space whose ``from_string`` parses the ``arch`` column.
        columns: value columns that must be present (numbers, finite).
        what: what the table is, for error messages ("accuracy table", "device table").
        optional: value columns read when present.
        complete: require one row for every genome of the space.

    Raises:
        InvalidInputError: a missing file or column, a non-numeric value, a duplicate index or
            architecture, an unparsable architecture, or (``complete``) a missing architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{what} {path} does not exist; give the path of a CSV file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            body = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc}") from None
    missing = [c for c in ("index", "arch", *columns) if c not in header]
    if missing:
        raise InvalidInputError(
            f"{what} {path} lacks column(s) {', '.join(missing)}; its header is {','.join(header) or '(empty)'}"
        )
    value_cols = tuple(columns) + tuple(c for c in optional if c in header and c not in columns)
    pos = {c: header.index(c) for c in ("index", "arch", *value_cols)}
    rows: dict[Genome, tuple[int, tuple[float, ...]]] = {}
    seen_index: dict[int, int] = {}
    for line, row in enumerate(body, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise InvalidInputError(
                f"{what} {path} line {line}: {len(row)} fields, the header has {len(header)}"
            )
        try:
            index = int(row[pos["index"]])
        except ValueError:
            raise InvalidInputError(
                f"{what} {path} line {line}: index {row[pos['index']]!r} is not an integer"
            ) from None
        if index in seen_index:
            raise InvalidInputError(
                f"{what} {path} line {line}: duplicate index {index} (first on line {seen_index[index]})"
            )
        seen_index[index] = line
        try:
            genome = space.from_string(row[pos["arch"]])
        except SlimforgeError as exc:
            raise InvalidInputError(f"{what} {path} line {line}: {exc}") from None
        if genome in rows:
            raise InvalidInputError(
                f"{what} {path} line {line}: architecture {row[pos['arch']]} appears twice "
                f"(also index {rows[genome][0]})"
            )
        values = []
        for col in value_cols:
            text = row[pos[col]]
            value = finite_number(text)
            if value is None:
                raise InvalidInputError(f"{what} {path} line {line}: {col} {text!r} is not a finite number")
            values.append(value)
        rows[genome] = (index, tuple(values))
    if not rows:
        raise InvalidInputError(f"{what} {path} has no rows")
    if complete and space.size <= _MAX_CHECKED_SIZE and len(rows) != space.size:
        example = _first_missing(space, rows)
        raise InvalidInputError(
            f"{what} {path} has {len(rows):,} of the {space.size:,} {space.name} architectures "
            f"(missing e.g. {space.to_string(example)}); a tabular oracle needs every architecture"
        )
    return ArchTable(path=str(path), columns=value_cols, rows=rows)


def write_arch_table(
    path: str | os.PathLike,
    rows: Sequence[tuple[int, str, Sequence[float]]],
    columns: Sequence[str],
) -> Path:
    """Write ``(index, arch, values)`` rows as a table :func:`read_arch_table` reads back."""
    import io

    from slimforge.io import atomic_write_text

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["index", "arch", *columns])
    for index, arch, values in rows:
        writer.writerow([index, arch, *(repr(float(v)) for v in values)])
    return atomic_write_text(Path(path), buffer.getvalue())


def _first_missing(space: SearchSpace, rows: dict[Genome, object]) -> Genome:
    for genome in itertools.product(*(range(n) for n in space.num_choices)):
        if genome not in rows:
            return genome
    return next(iter(rows))
