"""Input shapes: parse ``1x3x224x224`` and check a shape against what a model's first layer takes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from slimforge.errors import InputShapeError

__all__ = ["check_input_shape", "expected_input", "format_shape", "parse_input_shape", "shape_error"]

_RANK_OF = {nn.Conv1d: 3, nn.Conv2d: 4, nn.Conv3d: 5, nn.Linear: 2}
_LAYOUT = {2: "N×F", 3: "N×C×L", 4: "N×C×H×W", 5: "N×C×D×H×W"}


def format_shape(shape: Sequence[int]) -> str:
    """``(1, 3, 224, 224)`` → ``"1x3x224x224"``."""
    return "x".join(str(d) for d in shape)


def parse_input_shape(shape: str | Sequence[int]) -> tuple[int, ...]:
    """Turn ``"1x3x224x224"`` (or a sequence of ints) into a tuple of positive ints.

    Raises:
        InputShapeError: on anything that is not positive integers separated by ``x``.
    """
    if isinstance(shape, str):
        parts = [p.strip() for p in re.split(r"[x×,]", shape.strip().lower())]
        if not shape.strip() or not all(re.fullmatch(r"\d+", p) for p in parts):
            raise InputShapeError(
                f"input shape {shape!r} is not positive integers separated by 'x'; use e.g. 1x3x224x224"
            )
        dims = tuple(int(p) for p in parts)
    else:
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise InputShapeError(
                f"input shape {shape!r} is not a sequence of integers; use e.g. (1, 3, 224, 224)"
            ) from None
        if any(not float(d).is_integer() for d in shape):
            raise InputShapeError(
                f"input shape {shape!r} has non-integer dimensions; use e.g. (1, 3, 224, 224)"
            )
    if not dims or any(d <= 0 for d in dims):
        raise InputShapeError(
            f"input shape {format_shape(dims) or '(empty)'} must have positive dimensions; use e.g. 1x3x224x224"
        )
    return dims


def expected_input(model: nn.Module) -> tuple[str, int, int] | None:
    """``(layer name, rank, channels)`` that the model's first conv/linear layer takes, or None.

    Registration order is taken as execution order, which holds for the sequential CNNs this is
    meant for; the trial forward pass in the profiler catches the rest.
    """
    for name, module in model.named_modules():
        for kind, rank in _RANK_OF.items():
            if type(module) is kind:
                channels = module.in_features if isinstance(module, nn.Linear) else module.in_channels
                return name or type(module).__name__, rank, int(channels)
    return None


def check_input_shape(model: nn.Module, shape: Sequence[int]) -> None:
    """Raise :class:`InputShapeError` when ``shape`` has the wrong rank or channels for ``model``."""
    expected = expected_input(model)
    if expected is None:
        return
    layer, rank, channels = expected
    layout = _LAYOUT[rank]
    example = format_shape((1, channels) + (224,) * (rank - 2)) if rank > 2 else f"1x{channels}"
    if len(shape) != rank:
        raise InputShapeError(
            f"input shape {format_shape(shape)} has rank {len(shape)}, but the model takes a {rank}-D input "
            f"{layout} with {'F' if rank == 2 else 'C'}={channels}; use e.g. {example}"
        )
    got = shape[-1] if rank == 2 else shape[1]
    if got != channels:
        what = "features" if rank == 2 else "channels"
        raise InputShapeError(
            f"input shape {format_shape(shape)} has {got} {what}, but the model's first layer ({layer}) "
            f"takes {channels}; use e.g. {example}"
        )


def shape_error(model: nn.Module, shape: Sequence[int], exc: BaseException) -> InputShapeError:
    """The error to raise when a forward pass at ``shape`` failed with ``exc``: says what fits."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    expected = expected_input(model)
    hint = ""
    if expected is not None and expected[1] > 2:
        _, rank, channels = expected
        spatial = {3: "L", 4: "H×W", 5: "D×H×W"}[rank]
        example = format_shape((1, channels) + (224,) * (rank - 2))
        hint = (
            f"; it takes N×{channels}×{spatial} with {spatial} large enough for its strides, e.g. {example}"
        )
    return InputShapeError(f"the model cannot take input shape {format_shape(shape)} ({reason}){hint}")
