"""Reading a user's text file with one-line errors that say which file and what to do."""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_text_file"]


def read_text_file(path: Path, where: str, error: type[Exception], missing_hint: str) -> str:
    """The UTF-8 text of ``path``.

    Raises:
        error: ``"{where}: no such file; {missing_hint}"`` for a missing file, or ``"{where} cannot
            be read (...)"`` for one that cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{where}: no such file; {missing_hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{where} cannot be read ({exc})") from None
