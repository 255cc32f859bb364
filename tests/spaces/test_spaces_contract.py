"""The search-space contract, run over every registered space (DESIGN.md "Search-space contract")."""

from __future__ import annotations

import pytest

from slimforge.errors import UnknownNameError
from slimforge.spaces import SPACES, SearchSpace, get_space
from slimforge.testing.spaces import SpaceContract

NAMES = SPACES.list()


class TestEveryRegisteredSpace(SpaceContract):
    """The shipped contract (slimforge.testing.spaces), over every registered space."""

    @pytest.fixture(scope="class", params=NAMES)
    def space(self, request) -> SearchSpace:
        return get_space(request.param)


def test_registry_builds_each_space_by_name():
    assert "nb201" in NAMES
    for name in NAMES:
        assert get_space(name).name == name
    with pytest.raises(UnknownNameError, match="nb201"):
        get_space("nb2O1")
