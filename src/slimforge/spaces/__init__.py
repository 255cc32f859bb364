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

__all__ = ["ENTRY_POINT_GROUP", "SPACES", "Genome", "NB201Space", "SearchSpace", "Supernet", "build_from_config", "get_space"]

SPACES: Registry[type[SearchSpace]] = Registry("search space")
SPACES.register("nb201", "slimforge.spaces.nb201:NB201Space")
SPACES.register("mbv2", "slimforge.spaces.mbv2:MBV2Space")
SPACES.register("shufflenet", "slimforge.spaces.shufflenet:ShuffleNetSpace")


#: the entry-point group through which an installed package offers its own spaces by name.
ENTRY_POINT_GROUP = "slimforge.spaces"


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Create a space: a registered name (``nb201``), a user's own class or factory by reference
    (``mypkg.spaces:TinySpace``, ``path/to/spaces.py:TinySpace``), or a name an installed package
    offers in the ``slimforge.spaces`` entry-point group. ``kwargs`` go to its constructor.

    User code is imported only for a reference (or entry-point name) the caller gave.
    """
    from slimforge.io import import_reference, is_reference

    if is_reference(name):
        factory = import_reference(name, what="search space")
    elif name not in SPACES and (point := _entry_point(name)) is not None:
        try:
            factory = point.load()
        except Exception as exc:  # noqa: BLE001 - a plug-in that fails to import: one line naming it
            raise InvalidInputError(f"search space {name!r} (entry point {point.value}) failed to import: "
                                    f"{type(exc).__name__}: {exc}") from None
    else:
        factory = SPACES.get(name)
    try:
        space = factory(**kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"search space {name!r}: {exc}") from None
    if not isinstance(space, SearchSpace):
        raise InvalidInputError(
            f"search space {name!r} made a {type(space).__name__}, not a slimforge.spaces.SearchSpace; "
            "subclass SearchSpace (see slimforge.testing.spaces for the contract)"
        )
    return space


def _entry_point(name: str) -> Any:
    from importlib.metadata import entry_points

    return next((p for p in entry_points(group=ENTRY_POINT_GROUP) if p.name == name), None)


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
