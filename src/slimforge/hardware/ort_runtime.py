"""ONNX Runtime on the CPU: the default runtime for latency (the deployment format is ONNX)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from torch import nn

from slimforge.errors import InputShapeError, MissingDependencyError, ModelFileError
from slimforge.hardware.input_shape import format_shape
from slimforge.hardware.runtime import Runtime

__all__ = ["OrtRuntime"]


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime is not installed; pip install onnxruntime") from None
    return onnxruntime


class OrtRuntime(Runtime):
    """ONNX Runtime, CPU execution provider, sequential execution, all graph optimisations.

    An ``nn.Module`` is exported to ONNX first (:func:`slimforge.hardware.export_onnx`); an
    ``.onnx`` file is loaded as it is.
    """

    name = "onnxruntime"
    runs_onnx_files = True

    def version(self) -> str:
        return str(_ort().__version__)

    @contextmanager
    def _session(
        self, model: nn.Module | str | Path, shape: tuple[int, ...], threads: int, seed: int
    ) -> Iterator[Callable[[], object]]:
        from slimforge.hardware.onnx_export import INPUT_NAME, export_onnx
        from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape

        ort = _ort()
        with tempfile.TemporaryDirectory(prefix="slimforge-ort-") as tmp:
            if isinstance(model, nn.Module):
                path = export_onnx(model, shape, Path(tmp) / "model.onnx")
                input_name, dtype = INPUT_NAME, np.dtype(np.float32)
            else:
                path = Path(model)
                proto = load_onnx(path)
                input_name, declared, elem_type = onnx_input(proto, path)
                resolve_input_shape(declared, shape, path)
                from onnx import helper

                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
                del proto
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3  # errors only: its warnings would break one-line CLI output
            try:
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                raise ModelFileError(f"ONNX Runtime cannot load {path}: {_first_line(exc)}") from None
            rng = np.random.default_rng(seed)
            feed = {input_name: rng.standard_normal(shape).astype(dtype)}
            try:
                session.run(None, feed)
            except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                raise InputShapeError(
                    f"ONNX Runtime cannot run {path.name} at input shape {format_shape(shape)}: {_first_line(exc)}"
                ) from None

            def run() -> object:
                return session.run(None, feed)

            yield run


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
