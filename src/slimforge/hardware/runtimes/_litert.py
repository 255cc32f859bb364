"""LiteRT (formerly TensorFlow Lite) with its XNNPACK delegate: ``.tflite`` files on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InputShapeError, ModelFileError
from slimforge.hardware.input_shape import format_shape
from slimforge.hardware.runtimes._base import FileRuntime, Infer, first_line
from slimforge.hardware.runtimes._deps import require

__all__ = ["LiteRtRuntime"]


class LiteRtRuntime(FileRuntime):
    """The ``ai-edge-litert`` interpreter; its default op resolver applies the XNNPACK delegate.

    A full-integer model (int8 input and output, as LiteRT's static quantization writes it) is fed
    and read through its own quantization parameters, so callers always see float32.
    """

    name = "litert"
    file_suffixes = (".tflite",)
    format = "tflite"
    package = "ai-edge-litert"

    def delegate(self) -> str:
        return "XNNPACK"

    def input_shape(self, path: str | Path) -> tuple[int, ...] | None:
        from slimforge.hardware.onnx_export import _silenced

        module = require(self.package)
        try:
            with _silenced():
                details = module.Interpreter(model_path=str(path)).get_input_details()
        except Exception:  # noqa: BLE001 - unreadable: loading it says why
            return None
        return tuple(int(d) for d in details[0]["shape"]) if details else None

    @contextmanager
    def _load(self, path: Path, shape: tuple[int, ...], threads: int) -> Iterator[Infer]:
        from slimforge.hardware.onnx_export import _silenced

        module = require(self.package)
        try:
            with _silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" comes from C++
                interpreter = module.Interpreter(
                    model_path=str(path),
                    num_threads=threads,
                    experimental_op_resolver_type=module.OpResolverType.AUTO,
                )
                (inp,) = interpreter.get_input_details()[:1]
                declared = tuple(int(d) for d in inp["shape"])
                if declared != shape:
                    interpreter.resize_tensor_input(inp["index"], list(shape), strict=True)
                interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise ModelFileError(
                f"LiteRT cannot load {path.name} at input {format_shape(shape)}: {first_line(exc)}"
            ) from None
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        to_input = _quantizer(inp)
        from_output = _dequantizer(out)

        def infer(x: np.ndarray) -> np.ndarray:
            if tuple(x.shape) != shape:
                raise InputShapeError(
                    f"input {format_shape(x.shape)} is not the loaded {format_shape(shape)}"
                )
            interpreter.set_tensor(inp["index"], to_input(x))
            interpreter.invoke()
            return from_output(interpreter.get_tensor(out["index"]))

        yield infer


def _quantizer(detail: dict[str, Any]) -> Any:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return lambda x: np.ascontiguousarray(x, dtype=np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return lambda x: np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantizer(detail: dict[str, Any]) -> Any:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return lambda y: np.array(y, dtype=np.float32)
    scale, zero = detail["quantization"]
    return lambda y: (y.astype(np.float32) - zero) * np.float32(scale)
