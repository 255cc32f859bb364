"""Inference runtimes that latency is measured on, behind a registry.

A runtime loads a model once and hands back a function that runs one inference on a fixed input.
Later issues register more (INT8 QDQ models in ONNX Runtime, remote devices) under new names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.registry import Registry

__all__ = ["RUNTIMES", "Runtime", "check_threads"]


def check_threads(threads: Any) -> int:
    """Return ``threads`` as a positive int, or raise :class:`InvalidInputError`."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a positive integer, got {threads!r}; use e.g. --threads 1")
    return threads


class Runtime(ABC):
    """One inference engine: ``session(model, shape, threads)`` yields a function running one inference.

    Subclasses implement :meth:`version` and the ``_session`` hook; :meth:`session` validates first.
    """

    name: ClassVar[str]
    #: whether the runtime can run a ``.onnx`` file as well as an ``nn.Module``.
    runs_onnx_files: ClassVar[bool] = False

    @abstractmethod
    def version(self) -> str:
        """The engine's version string, recorded with every measurement."""

    @contextmanager
    def session(
        self, model: nn.Module | str | Path, input_shape: Sequence[int] | str, threads: int = 1, seed: int = 0
    ) -> Iterator[Callable[[], object]]:
        """Load ``model`` for ``input_shape`` on ``threads`` threads; yield a one-inference function.

        The first inference runs before the yield, so a shape the model cannot take raises here.
        """
        threads = check_threads(threads)
        shape = parse_input_shape(input_shape)
        if not isinstance(model, nn.Module) and not self.runs_onnx_files:
            raise InvalidInputError(
                f"runtime {self.name!r} cannot run the ONNX file {model}; use the 'onnxruntime' runtime"
            )
        with self._session(model, shape, threads, seed) as run:
            yield run

    @abstractmethod
    def _session(
        self, model: nn.Module | str | Path, shape: tuple[int, ...], threads: int, seed: int
    ) -> AbstractContextManager[Callable[[], object]]:
        """Hook: load the validated model and yield the one-inference function."""


RUNTIMES: Registry[type[Runtime]] = Registry("runtime")
RUNTIMES.register("onnxruntime", "slimforge.hardware.ort_runtime:OrtRuntime")
RUNTIMES.register("torch", "slimforge.hardware.torch_runtime:TorchRuntime")
