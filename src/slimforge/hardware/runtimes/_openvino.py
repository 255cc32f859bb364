"""OpenVINO on the CPU: IR (``.xml`` + ``.bin``) or ``.onnx`` files, one stream, FP32 inference precision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slimforge.errors import ModelFileError
from slimforge.hardware.input_shape import format_shape
from slimforge.hardware.runtimes._base import FileRuntime, Infer, first_line
from slimforge.hardware.runtimes._deps import require

__all__ = ["OPENVINO_CONFIG", "OpenVinoRuntime"]

#: compile settings besides the thread count: latency hint, one stream, and f32 inference precision
#: (the CPU plugin would otherwise run bf16 where the CPU has it, which changes the figures and
#: the outputs of an FP32 model; an INT8 model keeps its integer kernels).
OPENVINO_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}


class OpenVinoRuntime(FileRuntime):
    """OpenVINO's CPU plugin with ``INFERENCE_NUM_THREADS`` set and :data:`OPENVINO_CONFIG`."""

    name = "openvino"
    file_suffixes = (".xml", ".onnx")
    format = "openvino"
    package = "openvino"

    def version(self) -> str:
        return str(require(self.package).get_version())

    def delegate(self) -> str:
        return "CPU plugin, f32 inference precision"

    def input_shape(self, path: str | Path) -> tuple[int, ...] | None:
        ov = require(self.package)
        try:
            shape = ov.Core().read_model(str(path)).input(0).get_partial_shape()
        except Exception:  # noqa: BLE001 - unreadable: loading it says why
            return None
        return tuple(int(d.get_length()) for d in shape) if shape.is_static else None

    @contextmanager
    def _load(self, path: Path, shape: tuple[int, ...], threads: int) -> Iterator[Infer]:
        ov = require(self.package)
        try:
            core = ov.Core()
            model = core.read_model(str(path))
            if tuple(model.input(0).get_partial_shape().get_min_shape()) != shape:
                model.reshape({model.input(0): ov.PartialShape(list(shape))})
            compiled = core.compile_model(model, "CPU", {**OPENVINO_CONFIG, "INFERENCE_NUM_THREADS": threads})
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise ModelFileError(
                f"OpenVINO cannot load {path.name} at input {format_shape(shape)}: {first_line(exc)}"
            ) from None
        request = compiled.create_infer_request()

        def infer(x: np.ndarray) -> np.ndarray:
            request.infer([np.ascontiguousarray(x, dtype=np.float32)])
            return np.array(request.get_output_tensor(0).data, dtype=np.float32)

        yield infer
