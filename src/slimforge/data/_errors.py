"""The error every data loader raises for bad input."""

from __future__ import annotations

from slimforge.errors import InvalidInputError

__all__ = ["DataError"]


class DataError(InvalidInputError):
    """A data set that cannot be read: a missing path, a wrong layout, inconsistent arrays.

    The message is one line naming the file (or spec) and what is wrong with it, so the CLI can
    print it as is.
    """
