"""RKNN on a Rockchip board's NPU through ``rknn-toolkit-lite2`` (aarch64 only; the agent serves it there).

Not testable on an x86 machine: the package ships only aarch64 wheels. The tests exercise the agent's
request/response path with this runtime's registry entry swapped for a stand-in runtime; the code
below is complete but has not yet run on an RK3588 NPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slimforge.errors import ModelFileError
from slimforge.hardware.runtimes._base import FileRuntime, Infer, first_line
from slimforge.hardware.runtimes._deps import require

__all__ = ["RknnLiteRuntime"]


class RknnLiteRuntime(FileRuntime):
    """``RKNNLite``: ``.rknn`` files on the board's NPU, cores chosen by the driver (``NPU_CORE_AUTO``).

    The NPU has no thread count: ``threads`` is recorded with the figure but changes nothing.
    """

    name = "rknn"
    file_suffixes = (".rknn",)
    format = "rknn"
    package = "rknn-toolkit-lite2"

    def delegate(self) -> str:
        return "NPU (core mask auto)"

    @contextmanager
    def _load(self, path: Path, shape: tuple[int, ...], threads: int) -> Iterator[Infer]:
        api = require(self.package)
        lite = api.RKNNLite(verbose=False)
        try:
            if lite.load_rknn(str(path)) != 0:
                raise ModelFileError(
                    f"RKNN Lite cannot load {path.name}; is it an .rknn file for this board?"
                )
            if lite.init_runtime(core_mask=api.RKNNLite.NPU_CORE_AUTO) != 0:
                raise ModelFileError(
                    f"RKNN Lite cannot start the NPU runtime for {path.name}; check the board's driver"
                )

            def infer(x: np.ndarray) -> np.ndarray:
                try:
                    outputs = lite.inference(
                        inputs=[np.ascontiguousarray(x, dtype=np.float32)], data_format="nchw"
                    )
                except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                    raise ModelFileError(f"RKNN Lite failed on {path.name}: {first_line(exc)}") from None
                return np.asarray(outputs[0], dtype=np.float32)

            yield infer
        finally:
            lite.release()
