"""Contract test suites shipped with slimforge: a user's own plug-in is checked by one subclass.

``slimforge.testing.algorithms.AlgorithmContract``: every search algorithm (ask/tell, determinism
by seed, resume from a run store). The suites use pytest, which only they import.
"""

from __future__ import annotations

__all__: list[str] = []
