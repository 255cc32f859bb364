"""Inference runtimes that latency is measured on, behind a registry.

A runtime loads a model once and hands back a function that runs one inference on a fixed input.
Beside ONNX Runtime and PyTorch eager, the deployment runtimes (LiteRT, OpenVINO, ExecuTorch, RKNN)
are registered here lazily: each is an optional extra (``pip install slimforge[litert]``), imported
only when used, with an actionable error when it is absent (:mod:`slimforge.hardware.runtimes`).
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
    #: model file suffixes the runtime loads (``.onnx`` when ``runs_onnx_files``).
    file_suffixes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def version(self) -> str:
        """The engine's version string, recorded with every measurement."""

    def delegate(self) -> str | None:
        """The backend or delegate the runtime runs on (``XNNPACK``), recorded with every measurement."""
        return None

    def input_shape(self, path: str | Path) -> tuple[int, ...] | None:
        """The input shape a model file declares (None when the runtime cannot tell)."""
        return None

    def runs_file(self, path: str | Path) -> bool:
        """Whether ``path`` is a model file this runtime loads (by its suffix)."""
        suffixes = self.file_suffixes or ((".onnx",) if self.runs_onnx_files else ())
        return Path(path).suffix.lower() in suffixes

    @contextmanager
    def session(
        self, model: nn.Module | str | Path, input_shape: Sequence[int] | str, threads: int = 1, seed: int = 0
    ) -> Iterator[Callable[[], object]]:
        """Load ``model`` for ``input_shape`` on ``threads`` threads; yield a one-inference function.

        The first inference runs before the yield, so a shape the model cannot take raises here.
        """
        threads = check_threads(threads)
        shape = parse_input_shape(input_shape)
        if not isinstance(model, nn.Module) and not self.runs_file(model):
            suffixes = self.file_suffixes or ((".onnx",) if self.runs_onnx_files else ())
            runs = f"{', '.join(suffixes)} files or PyTorch models" if suffixes else "PyTorch models only"
            raise InvalidInputError(
                f"runtime {self.name!r} cannot run the file {model}: it runs {runs}; "
                "use the 'onnxruntime' runtime for an .onnx file"
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
# Deployment runtimes: optional extras, imported when used (slimforge.hardware.runtimes).
RUNTIMES.register("litert", "slimforge.hardware.runtimes._litert:LiteRtRuntime")
RUNTIMES.register("openvino", "slimforge.hardware.runtimes._openvino:OpenVinoRuntime")
RUNTIMES.register("executorch", "slimforge.hardware.runtimes._executorch:ExecuTorchRuntime")
RUNTIMES.register("rknn", "slimforge.hardware.runtimes._rknn:RknnLiteRuntime")
