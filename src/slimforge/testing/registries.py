"""The registry contract as a pytest base class: names list, resolve and fail helpfully.

Every pluggable family lives in a :class:`slimforge.registry.Registry`; a user's own registry (or
a check that a plug-in registered correctly) is one subclass supplying the ``registry`` fixture::

    from slimforge.testing.registries import RegistryContract

    class TestMyRegistry(RegistryContract):
        @pytest.fixture
        def registry(self):
            return MY_REGISTRY

The contract: ``list()`` is sorted and non-empty, every listed name resolves (a lazy
``"module:attr"`` entry imports), an unknown name raises one ``UnknownNameError`` naming close
matches and the known names, and registering a name twice raises.
"""

from __future__ import annotations

import pytest

from slimforge.errors import UnknownNameError
from slimforge.registry import Registry

__all__ = ["RegistryContract"]


class RegistryContract:
    """Subclass and supply a ``registry`` fixture."""

    @pytest.fixture
    def registry(self) -> Registry:
        raise NotImplementedError("supply a `registry` fixture returning your Registry")

    def test_names_are_listed_sorted(self, registry: Registry) -> None:
        names = registry.list()
        assert names and names == sorted(names)
        assert all(isinstance(n, str) and n for n in names)

    def test_every_name_resolves(self, registry: Registry) -> None:
        for name in registry.list():
            assert registry.get(name) is not None, name

    def test_an_unknown_name_is_one_helpful_error(self, registry: Registry) -> None:
        first = registry.list()[0]
        with pytest.raises(UnknownNameError) as info:
            registry.get(first + "x")
        text = str(info.value)
        assert "\n" not in text and first in text and registry.kind in text

    def test_a_name_cannot_be_registered_twice(self, registry: Registry) -> None:
        first = registry.list()[0]
        with pytest.raises(ValueError, match="already registered"):
            registry.register(first, "anything:else")
