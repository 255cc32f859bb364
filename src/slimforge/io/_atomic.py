"""Atomic writes: a temporary file in the target's folder, fsync, then ``os.replace``.

A reader (or a resume after a crash or a full disk) sees the old file or the new one, never half
of one. Temporary names are unique (``mkstemp``), so two processes never collide on them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """A unique temporary path beside ``path``; renamed onto ``path`` when the block ends cleanly.

    For writers that want a file name (``torch.save``, an ONNX exporter): write to the yielded path;
    on any exception the temporary file is removed and ``path`` is left as it was. ``suffix`` keeps
    an extension some writers insist on (``.onnx``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{suffix}.tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file private (0600); the result gets the mode a plain open() would give
    # it (or keeps the mode of the file it replaces), so other readers are not locked out.
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
    except OSError:
        pass
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (strict: no NaN) to ``path`` atomically; returns ``path``.

    The text is produced before anything is written, so data that is not JSON-ready raises with
    ``path`` untouched.
    """
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # The rename itself is durable only once the folder is synced; some file systems refuse.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
