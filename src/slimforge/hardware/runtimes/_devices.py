"""Local devices of the deployment runtimes: ``local-litert``, ``local-openvino``, ``local-executorch``.

Each measures files of its runtime's format under the same protocol as ``local-cpu`` (warm-up,
stop on a stable IQR, models interleaved in one process) and records the runtime, its version,
the threads and the delegate. A PyTorch model is converted first (``slimforge export``'s
converters, without the output check); its figure is cached under the hash of the converted file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware._device_local import LocalDevice, convert_beside
from slimforge.hardware.devices import PreparedModel, sha256_file
from slimforge.hardware.input_shape import parse_input_shape
from slimforge.hardware.runtime import RUNTIMES

__all__ = ["LocalExecuTorchDevice", "LocalLiteRtDevice", "LocalOpenVinoDevice", "LocalRuntimeDevice"]


class LocalRuntimeDevice(LocalDevice):
    """This machine's CPU measured through one deployment runtime (``runtime``)."""

    #: the export format a PyTorch model is converted to.
    format: ClassVar[str] = ""

    def _check_available(self) -> None:
        self.describe()  # the runtime's version() imports it: a missing package raises here

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        engine = RUNTIMES.get(self.runtime)()
        if isinstance(model, nn.Module):
            if shape is None:
                raise InvalidInputError(
                    f"device {self.spec}: give the input shape of the {type(model).__name__} model, e.g. --input 1x3x32x32"
                )
            from slimforge.hardware.onnx_export import export_onnx

            # The figure is keyed by the hash of the model's ONNX export, as on local-torch: some
            # converters write their temporary paths into the file (OpenVINO's rt_info).
            digest = sha256_file(export_onnx(model, shape, onnx_path))
            path = convert_beside(model, self.format, onnx_path, shape)
            return PreparedModel(
                type(model).__name__, shape, digest, onnx_path=path, module=model, precision="fp32"
            )
        if not isinstance(model, (str, Path)):
            raise InvalidInputError(
                f"device {self.spec} measures a {', '.join(engine.file_suffixes)} file or a PyTorch model, "
                f"got {type(model).__name__}"
            )
        path = Path(model)
        if not engine.runs_file(path):
            raise InvalidInputError(
                f"device {self.spec} runs {', '.join(engine.file_suffixes)} files, not {path}; convert it with "
                f"`slimforge export MODEL --format {self.format}` (or measure the PyTorch model: a zoo name or a "
                "saved model directory)"
            )
        if not path.is_file():
            raise InvalidInputError(f"device {self.spec}: {path}: no such file")
        declared = engine.input_shape(path)
        if shape is None and declared is None:
            raise InvalidInputError(
                f"device {self.spec}: give the input shape of {path.name}, e.g. --input 1x3x32x32"
            )
        resolved = parse_input_shape(shape if shape is not None else declared)
        return PreparedModel(str(model), resolved, sha256_file(path), onnx_path=path, precision=None)


class LocalLiteRtDevice(LocalRuntimeDevice):
    """LiteRT with the XNNPACK delegate on this machine's CPU (``local-litert``): ``.tflite`` files or modules."""

    kind = "local-litert"
    runtime = "litert"
    format = "tflite"


class LocalOpenVinoDevice(LocalRuntimeDevice):
    """OpenVINO's CPU plugin on this machine (``local-openvino``): IR ``.xml``, ``.onnx`` files or modules."""

    kind = "local-openvino"
    runtime = "openvino"
    format = "openvino"


class LocalExecuTorchDevice(LocalRuntimeDevice):
    """ExecuTorch with XNNPACK on this machine's CPU (``local-executorch``): ``.pte`` files or modules."""

    kind = "local-executorch"
    runtime = "executorch"
    format = "executorch"
