"""Tabular evaluators: look a genome's metrics up in an architecture table (no network is built)."""

from __future__ import annotations

import os
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import Evaluator
from slimforge.search.tables import ArchTable, read_arch_table
from slimforge.spaces import Genome, SearchSpace

__all__ = ["TabularAccuracyEvaluator", "TabularDeviceEvaluator"]


class _TableEvaluator(Evaluator):
    def __init__(self, space: SearchSpace, table: ArchTable, metrics: tuple[str, ...]) -> None:
        super().__init__(space, metrics)
        self.table = table
        # genome -> metric values, precomputed so that a lookup is one dict access.
        self._lookup = {g: self._row(vals) for g, (_, vals) in table.rows.items()}

    def _row(self, values: tuple[float, ...]) -> dict[str, float]:
        return dict(zip(self.table.columns, values))

    def _evaluate(self, genome: Genome) -> dict[str, float]:
        try:
            return dict(self._lookup[genome])
        except KeyError:
            raise InvalidInputError(
                f"table {self.table.path} has no row for {self.space.to_string(genome)}"
            ) from None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": os.path.abspath(self.table.path)}


class TabularAccuracyEvaluator(_TableEvaluator):
    """Accuracy from a table (``index,arch,accuracy`` in %): metrics ``error`` = 100 - accuracy and ``accuracy``.

    Args:
        space: the space the table's ``arch`` strings belong to.
        path: the CSV file (e.g. NAS-Bench-201's ``accuracy_cifar10.csv``).
        table: an already-read table instead of ``path``.
    """

    def __init__(
        self, space: SearchSpace, path: str | os.PathLike | None = None, *, table: ArchTable | None = None
    ):
        if table is None:
            table = read_arch_table(path, space, ["accuracy"], what="accuracy table")
        super().__init__(space, table, ("error", "accuracy"))

    def _row(self, values: tuple[float, ...]) -> dict[str, float]:
        accuracy = values[self.table.columns.index("accuracy")]
        return {"error": 100.0 - accuracy, "accuracy": accuracy}


class TabularDeviceEvaluator(_TableEvaluator):
    """Device cost from a table (``index,arch,latency_ms[,energy_mj]``): metrics ``latency_ms`` (and ``energy_mj``).

    Args:
        space: the space the table's ``arch`` strings belong to.
        path: the CSV file (e.g. ``device_pi5_onnxruntime.csv``).
        table: an already-read table instead of ``path``.
    """

    def __init__(
        self, space: SearchSpace, path: str | os.PathLike | None = None, *, table: ArchTable | None = None
    ):
        if table is None:
            table = read_arch_table(path, space, ["latency_ms"], optional=["energy_mj"], what="device table")
        super().__init__(space, table, tuple(table.columns))
