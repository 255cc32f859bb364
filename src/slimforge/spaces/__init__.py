"""Search spaces: genomes, canonical forms, operators and standalone networks.

Every space implements :class:`SearchSpace` and is registered in :data:`SPACES`; the contract
tests run over ``SPACES.list()``, so a new space is tested the day it is registered.
"""

from __future__ import annotations

from typing import Any

from slimforge.registry import Registry
from slimforge.spaces._base import Genome, SearchSpace
from slimforge.spaces.nb201 import NB201Space

__all__ = ["SPACES", "Genome", "NB201Space", "SearchSpace", "get_space"]

SPACES: Registry[type[SearchSpace]] = Registry("search space")
SPACES.register("nb201", "slimforge.spaces.nb201:NB201Space")
SPACES.register("mbv2", "slimforge.spaces.mbv2:MBV2Space")
SPACES.register("shufflenet", "slimforge.spaces.shufflenet:ShuffleNetSpace")


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Create the space registered as ``name`` (``get_space("nb201")``); kwargs go to its constructor."""
    return SPACES.get(name)(**kwargs)
