"""The base of the deployment runtimes: load a model file once, run it on arrays.

A :class:`FileRuntime` runs its own file format (``.tflite``, OpenVINO IR, ``.pte``, ``.rknn``).
:meth:`FileRuntime.load` yields a function from one input array to the first output array: the
export check (:mod:`slimforge.hardware.export`) feeds it real images, and the latency session of
:class:`~slimforge.hardware.runtime.Runtime` feeds it one fixed random input. A PyTorch module is
converted to the runtime's format first (in a temporary folder), as ONNX Runtime exports one to ONNX.
"""

from __future__ import annotations

import tempfile
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np
from torch import nn

from slimforge.errors import InputShapeError, InvalidInputError, ModelFileError, SlimforgeError
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.runtime import Runtime, check_threads
from slimforge.hardware.runtimes._deps import package_version, require

__all__ = ["FileRuntime", "Infer", "first_line"]

#: one inference: a float32 input array of the model's input shape → the first output as float32.
Infer = Callable[[np.ndarray], np.ndarray]


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (libraries' messages run long)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class FileRuntime(Runtime):
    """A runtime of one deployment file format; subclasses name their :attr:`package` and implement :meth:`_load`.

    ``format`` names the export format (:data:`slimforge.hardware.export.EXPORTERS`) a PyTorch
    module is converted to before it is loaded.
    """

    #: the export format this runtime runs.
    format: ClassVar[str] = ""
    #: the pip distribution that provides the runtime: imported when used, its version recorded.
    package: ClassVar[str] = ""

    def version(self) -> str:
        require(self.package)
        return package_version(self.package)

    @contextmanager
    def load(
        self, model: nn.Module | str | Path, input_shape: Sequence[int] | str, threads: int = 1
    ) -> Iterator[Infer]:
        """Load ``model`` (a file of this runtime, or a module converted first) for ``input_shape``.

        Yields a function running one inference on a float32 array of ``input_shape``.
        """
        threads = check_threads(threads)
        shape = parse_input_shape(input_shape)
        with tempfile.TemporaryDirectory(prefix=f"slimforge-{self.name}-") as tmp:
            if isinstance(model, nn.Module):
                from slimforge.hardware.export import convert_model

                path = convert_model(model, self.format, Path(tmp), input_shape=shape).files[0]
            else:
                path = Path(model)
                if not self.runs_file(path):
                    raise InvalidInputError(
                        f"runtime {self.name!r} runs {', '.join(self.file_suffixes)} files, not {path}; "
                        f"convert the model with `slimforge export MODEL --format {self.format}`"
                    )
                if not path.is_file():
                    raise ModelFileError(f"{path}: no such model file")
            with self._load(path, shape, threads) as infer:
                yield infer

    @contextmanager
    def _session(
        self, model: nn.Module | str | Path, shape: tuple[int, ...], threads: int, seed: int
    ) -> Iterator[Callable[[], object]]:
        with self.load(model, shape, threads) as infer:
            x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
            try:
                infer(x)
            except SlimforgeError:
                raise
            except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                raise InputShapeError(
                    f"{self.name} cannot run the model at input shape {format_shape(shape)}: {first_line(exc)}"
                ) from None

            def run() -> object:
                return infer(x)

            yield run

    @abstractmethod
    def _load(self, path: Path, shape: tuple[int, ...], threads: int) -> AbstractContextManager[Infer]:
        """Hook: load the file at ``path`` for ``shape`` on ``threads`` threads; yield the inference."""
