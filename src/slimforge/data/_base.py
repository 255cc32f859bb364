"""The loader interface: one public ``load`` that checks the path, one ``_load`` hook per format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from slimforge.data._dataset import ArrayDataset
from slimforge.data._errors import DataError

__all__ = ["DatasetLoader", "SourceSplits"]


@dataclass(frozen=True, eq=False)
class SourceSplits:
    """What a source holds: a training part and, where the source has them, validation and test parts."""

    train: ArrayDataset
    val: ArrayDataset | None = None
    test: ArrayDataset | None = None


class DatasetLoader(ABC):
    """Reads one kind of source into uint8 NCHW arrays at their native size and channel count.

    Class attributes say how :func:`slimforge.data.load_dataset` treats the result.
    """

    #: whether the spec names a path (``npz:FILE``) or not (``digits``).
    needs_path: ClassVar[bool] = True
    #: "directory" or "file": what the path must be.
    path_kind: ClassVar[str] = "directory"
    #: side length to resize to when the caller gives none (None keeps the native size).
    default_image_size: ClassVar[int | None] = None
    #: channel count to convert to when the caller gives none (None keeps the native count).
    default_channels: ClassVar[int | None] = None
    #: whether crops and horizontal flips keep the class (False for digits).
    standard_augmentation: ClassVar[bool] = True

    def load(self, path: str | None = None) -> SourceSplits:
        """Check ``path`` and read the source."""
        if not self.needs_path:
            if path:
                raise DataError(f"this built-in data set takes no path, got {path!r}")
            return self._load(None)
        if not path:
            raise DataError(f"no {self.path_kind} given; write SCHEME:PATH")
        resolved = Path(path).expanduser()
        if not resolved.exists():
            raise DataError(f"{self.path_kind} {str(resolved)!r} does not exist")
        if self.path_kind == "directory" and not resolved.is_dir():
            raise DataError(f"{str(resolved)!r} is a file; this scheme reads a directory")
        if self.path_kind == "file" and not resolved.is_file():
            raise DataError(f"{str(resolved)!r} is a directory; this scheme reads a file")
        return self._load(resolved)

    @abstractmethod
    def _load(self, path: Path | None) -> SourceSplits:
        """Read the source at ``path`` (already checked to exist)."""
