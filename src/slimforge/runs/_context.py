"""What every stage of a run sees: the config, the run directory, its store, the data, the space."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from slimforge.errors import SlimforgeError
from slimforge.runs.config import RunConfig
from slimforge.runs.store import RunStore

__all__ = ["RunContext", "StageError", "write_json_atomic"]


class StageError(SlimforgeError):
    """A stage that cannot go on (e.g. an earlier stage's output is missing); says which and why."""


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

    def outputs(self, stage: str) -> dict[str, Any]:
        """The outputs of a finished stage; raises when it has not finished."""
        record = self.store.get_stage(stage)
        if record is None or record.status != "done":
            status = "not run" if record is None else record.status
            raise StageError(f"stage {stage!r} is {status}; the stages after it need its outputs")
        return dict(record.outputs)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
