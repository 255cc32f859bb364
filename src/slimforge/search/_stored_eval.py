"""An evaluator that answers from a run store what it has evaluated before (supernet accuracies, INT8 latencies).

The benchmarks evaluate the same architecture many times: every algorithm, every device table and
every resumed run asks the same supernet about the same canonical genomes. The costly answers
(inherited-weight accuracy, an INT8 export and its measurement) are therefore written to a SQLite
run store as they are made, keyed by the architecture string, and read back from then on. Each
row is one transaction, so a run killed mid-search loses at most the evaluation in flight.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.search.evaluator import BatchEvaluator, Evaluator
from slimforge.spaces import Genome

__all__ = ["StoredEvaluator"]

_META_KEY = "evaluator"


class StoredEvaluator(BatchEvaluator):
    """``inner``'s metrics, each genome evaluated once and kept in the run store at ``store_path``.

    Args:
        inner: the evaluator whose answers are kept.
        store_path: the ``.sqlite`` file (created if absent). It records ``inner``'s description
            (less the keys in ``ignore``); a store made by an evaluator with another description is
            refused, so answers of another supernet or other settings are never mixed in.
        ignore: description keys that do not change the answers (e.g. the checkpoint's path, so
            that a run directory can be moved).
    """

    _transient = ("_store",)

    def __init__(
        self, inner: Evaluator, store_path: str | os.PathLike, *, ignore: tuple[str, ...] = ()
    ) -> None:
        super().__init__(inner.space, inner.metrics)
        self.inner = inner
        self.store_path = Path(store_path)
        self.ignore = tuple(ignore)
        self._store: Any = None
        self.num_stored = 0
        self.num_computed = 0

    def fingerprint(self) -> dict[str, Any]:
        """What must match between the store and this evaluator (JSON-normalised)."""
        described = {k: v for k, v in self.inner.describe().items() if k not in self.ignore}
        return json.loads(json.dumps(described, default=str))

    def _open(self) -> Any:
        if self._store is None:
            from slimforge.io import RunStore

            store = RunStore(self.store_path)
            mine = self.fingerprint()
            saved = store.get_meta(_META_KEY)
            if saved is None:
                store.set_meta(_META_KEY, mine)
            elif saved != mine:
                store.close()
                differ = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
                raise InvalidInputError(
                    f"{self.store_path} holds evaluations made with other settings ({', '.join(differ)} "
                    "differ); use another --out, or delete that file to evaluate again"
                )
            self._store = store
        return self._store

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        store = self._open()
        keys = [self.space.to_string(g) for g in genomes]
        out: list[dict[str, float] | None] = []
        for key in keys:
            record = store.get_evaluation(key)
            out.append(None if record is None else dict(record.objectives))
        todo = [i for i, values in enumerate(out) if values is None]
        self.num_stored += len(genomes) - len(todo)
        for i in todo:
            # One genome per call and per row: a kill loses at most the evaluation in flight.
            start = time.perf_counter()
            values = {k: float(v) for k, v in self.inner.evaluate_many([genomes[i]])[0].items()}
            store.put_evaluation(
                keys[i],
                genome=list(genomes[i]),
                objectives=values,
                constraints={},
                feasible=True,
                seconds=time.perf_counter() - start,
            )
            out[i] = values
            self.num_computed += 1
        return [values for values in out if values is not None]

    def stored(self) -> list[tuple[tuple[int, ...], dict[str, float]]]:
        """Every ``(genome, metrics)`` in the store, in the order they were first evaluated."""
        return [(tuple(r.genome), dict(r.objectives)) for r in self._open().evaluations()]

    def close(self) -> None:
        """Close the store, and ``inner``'s resources if it has a ``close`` (both reopen on use)."""
        inner_close = getattr(self.inner, "close", None)
        if callable(inner_close):
            inner_close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "stored_in": os.path.abspath(self.store_path)}
