"""Supernet construction from a space, with seeded weight initialisation."""

from __future__ import annotations

import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import SearchSpace, Supernet

__all__ = ["make_supernet"]


def _factory(space: SearchSpace):  # type: ignore[no-untyped-def]
    public = getattr(space, "supernet", None)
    if callable(public):
        return public
    hook = getattr(space, "_supernet", None)
    if callable(hook):
        return hook
    from slimforge.spaces.nb201 import NB201Space

    if isinstance(space, NB201Space):
        # NB201Space may not yet expose its supernet hook; its supernet class is known.
        from slimforge.spaces.nb201_supernet import NB201Supernet

        return lambda num_classes: NB201Supernet(space, num_classes)
    raise InvalidInputError(f"search space {space.name!r} has no weight-sharing supernet")


def make_supernet(space: SearchSpace, num_classes: int, seed: int) -> Supernet:
    """The supernet of ``space`` with weights initialised from ``seed`` (the global RNG is left untouched)."""
    factory = _factory(space)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        supernet = factory(num_classes)
    if not isinstance(supernet, Supernet):
        raise InvalidInputError(
            f"search space {space.name!r} returned {type(supernet).__name__}, not a Supernet"
        )
    return supernet
