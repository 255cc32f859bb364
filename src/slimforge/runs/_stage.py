"""The stage protocol of a run: declared inputs and settings, a typed output, a fingerprint.

A stage's fingerprint is a hash of its own settings (the parts of the config it reads) and its
inputs' fingerprints. A finished stage whose fingerprint is unchanged is reused; a changed setting
re-runs that stage and every stage downstream of it, like a build system: changing
``retrain.epochs`` retrains and recompresses but keeps the supernet and the searches.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from slimforge.io import JsonRecord

if TYPE_CHECKING:
    from slimforge.runs._context import RunContext
    from slimforge.runs.config import RunConfig

__all__ = ["STAGE_FORMAT", "RunStage", "data_settings", "fingerprint"]

#: bump when a stage's outputs change meaning, so finished stages of older runs are redone.
STAGE_FORMAT = 3  # 3: the mbv2 supernet's default sharing became "elastic"


def fingerprint(name: str, settings: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The hex fingerprint of a stage from its settings and its inputs' fingerprints."""
    text = json.dumps(
        {"stage": name, "format": STAGE_FORMAT, "settings": settings, "inputs": dict(sorted(inputs.items()))},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_settings(config: RunConfig) -> dict[str, Any]:
    """The settings of every stage that reads the data: the data spec, and the seed and validation
    fraction that fix its split."""
    return {"data": config.data, "seed": config.seed, "val_fraction": config.val_fraction}


class RunStage(ABC):
    """One stage of a run.

    Subclasses set ``name`` and ``output`` (the record type), and implement :meth:`settings`
    (the config values the stage's result depends on) and :meth:`_run`. Optional hooks:
    :meth:`inputs` (the stages whose outputs it reads), :meth:`check` (validation before any
    training), :meth:`artifacts` (the files it owns, removed before it re-runs with new settings).
    """

    name: ClassVar[str]
    output: ClassVar[type[JsonRecord]]

    @property
    def key(self) -> str:
        """The stage's name in the run store (``search:<device>`` for a per-device stage)."""
        return self.name

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        """Keys of the stages whose outputs this one reads (they run before it)."""
        return ()

    @abstractmethod
    def settings(self, config: RunConfig) -> dict[str, Any]:
        """The settings that determine this stage's result (JSON values)."""

    def check(self, config: RunConfig) -> None:
        """Validate this stage's settings before anything runs (raise a ConfigError naming the key)."""

    def artifacts(self, ctx: RunContext) -> list[Path]:
        """Files and folders this stage writes; removed before it re-runs with other settings."""
        return []

    def run(self, ctx: RunContext) -> JsonRecord:
        """Do the work (inputs through ``ctx.output(key)``) and return the typed output."""
        out = self._run(ctx)
        if not isinstance(out, self.output):
            raise TypeError(f"stage {self.key} returned {type(out).__name__}, not {self.output.__name__}")
        return out

    @abstractmethod
    def _run(self, ctx: RunContext) -> JsonRecord:
        """Hook: the work."""

    def clean(self, ctx: RunContext) -> None:
        """Remove :meth:`artifacts` (a re-run with other settings starts from nothing)."""
        for path in self.artifacts(ctx):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"
