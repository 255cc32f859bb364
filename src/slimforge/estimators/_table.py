"""Ground-truth accuracy tables (``index,arch,accuracy``, e.g. NAS-Bench-201's CIFAR-10 table)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.spaces import Genome, SearchSpace

__all__ = ["AccuracyTable", "read_accuracy_table"]


@dataclass(frozen=True)
class AccuracyTable:
    """Architectures and their accuracy (%), one row per architecture of the table file.

    Attributes:
        path: the file read.
        genomes: each row's genome.
        archs: each row's architecture string as written.
        accuracy: each row's accuracy in percent.
    """

    path: str
    genomes: tuple[Genome, ...]
    archs: tuple[str, ...]
    accuracy: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.genomes)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Row indices of ``n`` distinct architectures drawn with ``seed`` (in drawn order)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(self):
            raise InvalidInputError(
                f"cannot sample {n!r} architectures from a table of {len(self)}; ask for 1..{len(self)}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative int, got {seed!r}")
        return np.random.default_rng(seed).choice(len(self), size=n, replace=False)


def read_accuracy_table(path: str | os.PathLike, space: SearchSpace) -> AccuracyTable:
    """Read a CSV with columns ``arch`` (the space's string) and ``accuracy`` (%); other columns are ignored."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"accuracy table {path}: no such file (NAS-Bench-201's is ../shared/data/nb201/accuracy_cifar10.csv)"
        )
    genomes, archs, acc = [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"arch", "accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise ModelFileError(
                f"accuracy table {path}: missing column(s) {', '.join(sorted(missing))}; "
                f"expected a header like index,arch,accuracy"
            )
        for line, row in enumerate(reader, start=2):
            try:
                genomes.append(space.from_string(row["arch"]))
                acc.append(float(row["accuracy"]))
            except (InvalidInputError, TypeError, ValueError) as exc:
                raise ModelFileError(f"accuracy table {path}, line {line}: {exc}") from None
            archs.append(row["arch"])
    if not genomes:
        raise ModelFileError(f"accuracy table {path} has no rows")
    return AccuracyTable(str(path), tuple(genomes), tuple(archs), tuple(acc))
