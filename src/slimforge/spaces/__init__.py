"""Search spaces: genomes, canonical forms, operators and standalone networks.

Every space implements :class:`SearchSpace` and is registered in :data:`SPACES`; the contract
tests run over ``SPACES.list()``, so a new space is tested the day it is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.spaces._base import Genome, SearchSpace
from slimforge.spaces._supernet import Supernet
from slimforge.spaces.nb201 import NB201Space

__all__ = ["SPACES", "Genome", "NB201Space", "SearchSpace", "Supernet", "build_from_config", "get_space"]

SPACES: Registry[type[SearchSpace]] = Registry("search space")
SPACES.register("nb201", "slimforge.spaces.nb201:NB201Space")
SPACES.register("mbv2", "slimforge.spaces.mbv2:MBV2Space")
SPACES.register("shufflenet", "slimforge.spaces.shufflenet:ShuffleNetSpace")


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Create the space registered as ``name`` (``get_space("nb201")``); kwargs go to its constructor."""
    return SPACES.get(name)(**kwargs)


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """The saved-model builder ``space``: the standalone network of ``config["arch"]`` in a space.

    ``{"builder": "space", "space": "mbv2", "space_options": {...}, "arch": "<architecture string>",
    "kwargs": {"num_classes": 10}}``.
    """
    name, arch = config.get("space"), config.get("arch")
    if not isinstance(name, str) or not isinstance(arch, str):
        raise InvalidInputError(
            f"a 'space' model config needs string 'space' and 'arch', got {name!r} and {arch!r}"
        )
    options = config.get("space_options", {})
    if not isinstance(options, Mapping):
        raise InvalidInputError(f"'space_options' must be a JSON object, got {options!r}")
    space = get_space(name, **options)
    return space.build(space.from_string(arch), **config.get("kwargs", {}))
