"""A search space of your own: two genes (a width and a kernel size), checked by slimforge's contract.

Use it by reference: ``slimforge.get_space("examples/tiny_space.py:TinySpace")``, or in a run config
``space: {name: "examples/tiny_space.py:TinySpace"}``. Check it with ``pytest examples/tiny_space.py``.
"""

from __future__ import annotations

import pytest
from torch import nn

from slimforge.spaces import SearchSpace
from slimforge.testing.spaces import SpaceContract


class TinySpace(SearchSpace):
    """Gene 0: the first convolution's width (8, 16 or 32); gene 1: its kernel size (1, 3 or 5)."""

    name = "tiny"
    widths = (8, 16, 32)
    kernels = (1, 3, 5)

    @property
    def num_choices(self) -> list[int]:
        return [len(self.widths), len(self.kernels)]

    def _build(self, genome: tuple[int, ...], num_classes: int) -> nn.Module:
        width, kernel = self.widths[genome[0]], self.kernels[genome[1]]
        return nn.Sequential(
            nn.Conv2d(3, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
        )


class TestTinySpace(SpaceContract):
    @pytest.fixture
    def space(self) -> SearchSpace:
        return TinySpace()
