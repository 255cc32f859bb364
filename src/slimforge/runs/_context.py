"""What every stage of a run sees: the config, the run directory, its store, the data, the space."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from slimforge.errors import SlimforgeError
from slimforge.io import JsonRecord, RunStore
from slimforge.runs.config import RunConfig

__all__ = ["RunContext", "StageError"]


class StageError(SlimforgeError):
    """A stage that cannot go on (e.g. an earlier stage's output is missing); says which and why."""


def _single() -> Any:
    from slimforge.training.distributed import DistContext

    return DistContext()


class RunContext:
    """The state shared by the stages of one run.

    Args:
        config: the validated run config.
        run_dir: the run directory.
        store: the run's open store (stage status, measurement cache).
        progress: show progress bars on stderr.
        log: where one-line stage messages go (stderr by default).
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        store: RunStore,
        *,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.store = store
        self.progress = progress
        self._log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        #: the typed outputs of the stages done or reused so far in this process, by stage key.
        self.results: dict[str, JsonRecord] = {}
        #: the fingerprint of every stage of the plan, by stage key.
        self.fingerprints: dict[str, str] = {}
        #: run-wide warnings for the summary (e.g. an estimator that ranks poorly).
        self.warnings: list[str] = []
        #: PyTorch / ONNX Runtime threads for training and accuracy evaluation.
        self.threads: int = 1
        #: the resolved torch device every stage trains and evaluates on (``cpu``, ``cuda:0``).
        self.train_device: str = "cpu"
        #: the supernet's device: ``train_device`` unless the deprecated ``supernet.device`` says otherwise.
        self.supernet_device: str = "cpu"
        #: this process's place among torchrun's processes (the single-process context outside torchrun).
        self.dist: Any = _single()
        #: under torchrun on rank 0, the link that tells the other ranks which stage to train; else None.
        self.ranks: Any = None

    def train_runtime(self) -> Any:
        """The :class:`slimforge.training.TrainRuntime` of the run's stages (its ``train_device``)."""
        from slimforge.training import TrainRuntime

        return TrainRuntime(device=self.train_device)

    def log(self, text: str) -> None:
        """A one-line message about what the run is doing."""
        self._log(text)

    @cached_property
    def splits(self) -> Any:
        """The data set, split once with the run's seed (train / validation / test)."""
        from slimforge.data import load_dataset

        return load_dataset(self.config.data, val_fraction=self.config.val_fraction, seed=self.config.seed)

    @cached_property
    def space(self) -> Any:
        """The search space."""
        from slimforge.spaces import get_space

        return get_space(self.config.space.name, **self.config.space.options)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Batch-1 input shape of the data (``(1, C, H, W)``)."""
        return (1, *self.splits.input_shape)

    def path(self, relative: str) -> Path:
        """An absolute path inside the run directory."""
        return self.run_dir / relative

    def rel(self, path: Path) -> str:
        """``path`` relative to the run directory (as stage outputs record it)."""
        return Path(os.path.relpath(Path(path).resolve(), self.run_dir.resolve())).as_posix()

    def save_summary(self, html: Path | None = None) -> Any:
        """Compute the run's summary from what has finished and store it (the report reads it there)."""
        import dataclasses

        from slimforge.report import SUMMARY_META_KEY
        from slimforge.runs._summary import summarize

        summary = summarize(self)
        if html is not None:
            summary = dataclasses.replace(summary, report=str(html))
        self.store.set_meta(SUMMARY_META_KEY, summary.to_dict())
        return summary

    def output(self, stage: str) -> Any:
        """The typed output of a stage this one declared as an input; raises when it has none."""
        try:
            return self.results[stage]
        except KeyError:
            raise StageError(f"stage {stage!r} has not finished; the stages after it need its outputs") from None
