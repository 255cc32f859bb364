"""What evaluators that build networks share: a space's natural input shape and seeded builds."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.spaces import Genome, SearchSpace

__all__ = ["build_seeded", "check_num_classes", "space_input_shape"]

# Spaces without an ``input_shape`` attribute: NAS-Bench-201 networks are CIFAR networks, and the
# benchmark's device tables were measured at 1x3x32x32.
_NATURAL_SHAPES = {"nb201": (1, 3, 32, 32)}


def space_input_shape(space: SearchSpace, input_shape: Sequence[int] | str | None = None) -> tuple[int, ...]:
    """``input_shape`` parsed, or the batch-1 input the space is meant for when it is None."""
    if input_shape is not None:
        return parse_input_shape(input_shape)
    shape = getattr(space, "input_shape", None) or _NATURAL_SHAPES.get(space.name)
    if shape is None:
        raise InvalidInputError(
            f"space {space.name!r} has no natural input shape; give input_shape, e.g. '1x3x32x32'"
        )
    return parse_input_shape(shape)


def check_num_classes(num_classes: object) -> int:
    """``num_classes`` as a positive int, or InvalidInputError."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidInputError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def build_seeded(space: SearchSpace, genome: Genome, num_classes: int, seed: int = 0) -> nn.Module:
    """``space.build(genome, num_classes)`` in eval mode with initial weights drawn from ``seed``.

    The same genome then always gives the same network, byte for byte, so its ONNX export hashes
    the same and a measurement cache keyed by that hash answers a second time.
    """
    from slimforge.estimators import build_network

    return build_network(space, genome, seed=seed, num_classes=num_classes).eval()
