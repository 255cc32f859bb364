"""Moved to :mod:`slimforge.bench`, its own package above ``runs`` (issue 18).

This alias keeps ``from slimforge.runs.bench import ...`` working until the CLI imports from
:mod:`slimforge.bench`; import from there in new code.
"""

from __future__ import annotations

from slimforge.bench import *  # noqa: F403
from slimforge.bench import __all__  # noqa: F401
