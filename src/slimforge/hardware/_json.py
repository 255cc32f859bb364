"""Moved to :mod:`slimforge.io` (``JsonRecord``); this name stays until the last importer moves."""

from slimforge.io._record import JsonRecord

__all__ = ["JsonRecord"]
