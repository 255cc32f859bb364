"""PyTorch eager on the CPU (``--runtime torch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from slimforge.hardware.input_shape import check_input_shape, shape_error
from slimforge.hardware.runtime import Runtime
from slimforge.nn import evaluating

__all__ = ["TorchRuntime"]


class TorchRuntime(Runtime):
    """PyTorch eager mode under ``torch.inference_mode``, intra-op threads set for the session.

    The thread count is process-wide in PyTorch, so the previous value is restored on exit, and so
    is the model's train/eval mode.
    """

    name = "torch"

    def version(self) -> str:
        return torch.__version__

    @contextmanager
    def _session(
        self, model: nn.Module | str | Path, shape: tuple[int, ...], threads: int, seed: int
    ) -> Iterator[Callable[[], object]]:
        assert isinstance(model, nn.Module)  # Runtime.session rejects files for this runtime
        check_input_shape(model, shape)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with evaluating(model):

                def run() -> object:
                    with torch.inference_mode():
                        return model(x)

                try:
                    run()
                except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                    raise shape_error(model, shape, exc) from None
                yield run
        finally:
            torch.set_num_threads(previous)
