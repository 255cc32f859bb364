"""Errors meant for people: each message names the offending value and the fix.

The CLI prints a :class:`SlimforgeError` on one line and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "SlimforgeError",
    "UnknownNameError",
    "InvalidInputError",
    "ModelFileError",
    "InputShapeError",
    "MissingDependencyError",
    "close_matches",
]


class SlimforgeError(Exception):
    """Base class of every error slimforge raises on purpose (bad input, bad config)."""


class UnknownNameError(SlimforgeError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidInputError(SlimforgeError, ValueError):
    """A value outside what the function accepts."""


class ModelFileError(SlimforgeError):
    """A model file that cannot be read or is not of the expected format."""


class InputShapeError(SlimforgeError, ValueError):
    """An input shape the model cannot take."""


class MissingDependencyError(SlimforgeError, ImportError):
    """An optional dependency that is not installed."""


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` entries of ``choices`` that look like ``name``."""
    choices = list(choices)
    hits = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if not hits:
        hits = [c for c in choices if name.lower() in c.lower() or c.lower() in name.lower()][:n]
    return hits
