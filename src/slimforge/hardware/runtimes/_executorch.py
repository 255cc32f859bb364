"""ExecuTorch with the XNNPACK backend: ``.pte`` programs lowered by ``slimforge export --format executorch``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from slimforge.errors import ModelFileError
from slimforge.hardware.input_shape import format_shape
from slimforge.hardware.runtimes._base import FileRuntime, Infer, first_line
from slimforge.hardware.runtimes._deps import require

__all__ = ["ExecuTorchRuntime"]


class ExecuTorchRuntime(FileRuntime):
    """The ExecuTorch runtime's ``forward`` method; XNNPACK's thread pool sized for the session.

    The thread pool is process-wide in ExecuTorch, so its previous size is restored on exit.
    """

    name = "executorch"
    file_suffixes = (".pte",)
    format = "executorch"
    package = "executorch"

    def delegate(self) -> str:
        return "XNNPACK"

    def input_shape(self, path: str | Path) -> tuple[int, ...] | None:
        runtime_module = require(self.package)
        try:
            meta = runtime_module.Runtime.get().load_program(str(path)).metadata("forward")
            return tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        except Exception:  # noqa: BLE001 - unreadable: loading it says why
            return None

    @contextmanager
    def _load(self, path: Path, shape: tuple[int, ...], threads: int) -> Iterator[Infer]:
        from slimforge.hardware.onnx_export import _silenced

        runtime_module = require(self.package)
        from executorch.extension.pybindings import portable_lib

        try:
            with _silenced():  # the CPU-info probe logs from C++
                previous = portable_lib._threadpool_get_thread_count()
                portable_lib._unsafe_reset_threadpool(threads)
        except Exception:  # noqa: BLE001 - an ExecuTorch without the thread-pool bindings: its default
            previous = None
        try:
            try:
                program = runtime_module.Runtime.get().load_program(str(path))
                method = program.load_method("forward")
            except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                raise ModelFileError(f"ExecuTorch cannot load {path.name}: {first_line(exc)}") from None
            if method is None:
                raise ModelFileError(f"{path.name} has no forward method; export it with slimforge export")

            def infer(x: np.ndarray) -> np.ndarray:
                if tuple(x.shape) != shape:
                    raise ModelFileError(
                        f"{path.name} takes a fixed input; got {format_shape(x.shape)}, loaded {format_shape(shape)}"
                    )
                out = method.execute([torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))])
                return out[0].numpy().astype(np.float32, copy=False)

            yield infer
        finally:
            if previous is not None:
                with _silenced():
                    portable_lib._unsafe_reset_threadpool(previous)
