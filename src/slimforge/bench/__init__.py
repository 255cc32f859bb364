"""Benchmarks that reproduce the co-design study end to end, resumable in an output directory.

- :func:`run_codesign` (``slimforge bench codesign``): supernets per method on NAS-Bench-201, searched
  with NSGA-II / WSEA / CEA against device tables; the study's Tables 5-3 to 5-6 and the proxy-versus-
  true front.
- :func:`run_spaces_bench` (``slimforge bench spaces``): search spaces against hand-designed networks
  by their fronts of error versus INT8 latency measured on this machine.

Like ``slimforge run`` they are multi-stage runs in a directory: they train, search, export and
measure (search, supernet, compress, hardware) and draw figures (report), so they are a package of
their own above all of those, and above ``runs``, in the package order (DESIGN.md).

>>> from slimforge.bench import CodesignConfig, run_codesign
>>> result = run_codesign(CodesignConfig.from_preset("cpu", epochs=25), "bench/codesign")  # doctest: +SKIP
>>> print(result.format_table())                                                          # doctest: +SKIP
"""

from __future__ import annotations

from slimforge.bench._codesign import ALGORITHM_LABELS, run_codesign
from slimforge.bench._codesign_config import CODESIGN_PRESETS, CodesignConfig
from slimforge.bench._codesign_result import CodesignResult, CodesignRow
from slimforge.bench._int8 import Int8LatencyEvaluator
from slimforge.bench._select import REPRESENTATIVES, representative
from slimforge.bench._spaces import run_spaces_bench
from slimforge.bench._spaces_config import (
    BENCH_SPACES,
    DEFAULT_SEARCH_SETTINGS,
    SCALES,
    SPACES_PRESETS,
    SpacesConfig,
    ZooEntry,
)
from slimforge.bench._spaces_result import SpacePoint, SpacesResult
from slimforge.search import StoredEvaluator

__all__ = [
    "ALGORITHM_LABELS",
    "BENCH_SPACES",
    "CODESIGN_PRESETS",
    "DEFAULT_SEARCH_SETTINGS",
    "REPRESENTATIVES",
    "SCALES",
    "SPACES_PRESETS",
    "CodesignConfig",
    "CodesignResult",
    "CodesignRow",
    "Int8LatencyEvaluator",
    "SpacePoint",
    "SpacesConfig",
    "SpacesResult",
    "StoredEvaluator",
    "ZooEntry",
    "representative",
    "run_codesign",
    "run_spaces_bench",
]
