"""The formats: ONNX, TorchScript, LiteRT (``.tflite``), OpenVINO IR, ExecuTorch (``.pte``).

RKNN lives in :mod:`._rknn` (its toolkit runs in its own Python). Each converter writes
``model<suffix>`` into the folder it is given; :func:`slimforge.hardware.export.export_model`
checks the result and moves it into place.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.hardware.export._base import Converted, Exporter, ExportError
from slimforge.hardware.runtimes._base import first_line
from slimforge.hardware.runtimes._deps import require

__all__ = ["ExecuTorchExporter", "LiteRtExporter", "OnnxExporter", "OpenVinoExporter", "TorchScriptExporter"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Converters print progress and advice from Python and C++; none of it belongs in one-line output."""
    from slimforge.hardware.onnx_export import _silenced, quiet_root_logger

    with quiet_root_logger(), warnings.catch_warnings(), _silenced():
        warnings.simplefilter("ignore")
        yield


def _batches(calibration: np.ndarray, batch: int) -> list[np.ndarray]:
    """The calibration images as whole batches (a short last one is dropped), float32 and contiguous."""
    return [
        np.ascontiguousarray(calibration[i : i + batch], dtype=np.float32)
        for i in range(0, len(calibration) - batch + 1, batch)
    ]


def _failed(fmt: str, source: Any, exc: BaseException) -> ExportError:
    what = type(source).__name__ if isinstance(source, nn.Module) else str(source)
    return ExportError(f"could not convert {what} to {fmt}: {first_line(exc)}")


class OnnxExporter(Exporter):
    """ONNX (opset 17, the TorchScript exporter); INT8 is ONNX Runtime's static QDQ quantization
    (per-channel int8 weights, uint8 activations, MinMax calibration)."""

    name = "onnx"
    suffix = ".onnx"
    runtime = "onnxruntime"
    takes_onnx = True
    int8 = "ONNX Runtime static QDQ (per-channel int8 weights, uint8 activations)"

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        from slimforge.hardware.onnx_export import export_onnx

        path = out_dir / f"model{self.suffix}"
        if isinstance(source, Path):
            float_path = out_dir / "float.onnx" if precision == "int8" else path
            shutil.copyfile(source, float_path)
        else:
            float_path = export_onnx(source, shape, out_dir / "float.onnx" if precision == "int8" else path)
        if precision == "fp32":
            return Converted((path,))
        try:
            from onnxruntime import quantization as q
        except ImportError:  # pragma: no cover - onnxruntime is a core dependency
            raise ExportError("INT8 ONNX export needs onnxruntime; pip install onnxruntime") from None
        assert calibration is not None
        chunks = _batches(calibration, shape[0])

        class Reader(q.CalibrationDataReader):
            def __init__(self) -> None:
                self._chunks = iter(chunks)

            def get_next(self) -> dict[str, np.ndarray] | None:
                chunk = next(self._chunks, None)
                return None if chunk is None else {"input": chunk}

        pre = out_dir / "pre.onnx"
        try:
            with _quiet():
                q.quant_pre_process(str(float_path), str(pre))
                q.quantize_static(
                    str(pre),
                    str(path),
                    Reader(),
                    quant_format=q.QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=q.QuantType.QUInt8,
                    weight_type=q.QuantType.QInt8,
                    calibrate_method=q.CalibrationMethod.MinMax,
                )
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise _failed("INT8 ONNX", source, exc) from None
        finally:
            pre.unlink(missing_ok=True)
            float_path.unlink(missing_ok=True)
        return Converted((path,))


class TorchScriptExporter(Exporter):
    """TorchScript by tracing at the input shape (``torch.jit.trace``); run with ``torch.jit.load``."""

    name = "torchscript"
    suffix = ".pt"
    runtime = "torch"

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        path = out_dir / f"model{self.suffix}"
        try:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(source, torch.zeros(shape), check_trace=False)
                traced.save(str(path))
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise _failed("TorchScript", source, exc) from None
        return Converted((path,))


class LiteRtExporter(Exporter):
    """LiteRT flatbuffers through ``litert-torch`` (``torch.export`` → LiteRT converter).

    INT8 is LiteRT's full-integer static quantization through ``ai-edge-quantizer`` (recipe
    ``static_wi8_ai8``: int8 weights and activations, int8 input and output) calibrated on a
    representative dataset of real images.
    """

    name = "tflite"
    suffix = ".tflite"
    runtime = "litert"
    int8 = (
        "LiteRT full-integer static quantization (ai-edge-quantizer static_wi8_ai8, representative dataset)"
    )

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        with _quiet():  # importing it starts TensorFlow's logging, which writes to stderr
            converter = require("litert-torch")
        path = out_dir / f"model{self.suffix}"
        float_path = out_dir / "float.tflite" if precision == "int8" else path
        try:
            with _quiet():
                converter.convert(source, (torch.zeros(shape),)).export(str(float_path))
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise _failed("LiteRT", source, exc) from None
        if precision == "fp32":
            return Converted((path,))
        require("ai-edge-quantizer")
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import quantizer, recipe

        assert calibration is not None
        try:
            with _quiet():
                signatures = Interpreter(model_path=str(float_path)).get_signature_list()
                key = next(iter(signatures))
                input_name = signatures[key]["inputs"][0]
                qt = quantizer.Quantizer(str(float_path))
                qt.load_quantization_recipe(recipe.static_wi8_ai8())
                samples = [{input_name: chunk} for chunk in _batches(calibration, shape[0])]
                qt.quantize(qt.calibrate({key: samples})).export_model(str(path), overwrite=True)
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise _failed("INT8 LiteRT", source, exc) from None
        finally:
            float_path.unlink(missing_ok=True)
        return Converted((path,))


class OpenVinoExporter(Exporter):
    """OpenVINO IR (``model.xml`` + ``model.bin``, FP32 weights) converted from the ONNX export.

    INT8 is NNCF's post-training quantization (``nncf.quantize``, default preset) on the IR,
    calibrated on real images.
    """

    name = "openvino"
    suffix = ".xml"
    runtime = "openvino"
    takes_onnx = True
    int8 = "NNCF post-training quantization (nncf.quantize)"

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        from slimforge.hardware.onnx_export import export_onnx

        ov = require("openvino")
        onnx_path = source if isinstance(source, Path) else export_onnx(source, shape, out_dir / "float.onnx")
        xml = out_dir / f"model{self.suffix}"
        try:
            with _quiet():
                model = ov.convert_model(str(onnx_path))
                if precision == "int8":
                    nncf = require("nncf")
                    assert calibration is not None
                    items = _batches(calibration, shape[0])
                    model = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
                # FP32 weights: the default would halve them to FP16 and change the outputs.
                ov.save_model(model, str(xml), compress_to_fp16=False)
        except ExportError:
            raise
        except Exception as exc:
            if isinstance(exc, ImportError) or type(exc).__name__ == "MissingDependencyError":
                raise
            raise _failed("OpenVINO IR", source, exc) from None
        finally:
            if onnx_path != source:
                Path(onnx_path).unlink(missing_ok=True)
        return Converted((xml, xml.with_suffix(".bin")))


class ExecuTorchExporter(Exporter):
    """An ExecuTorch program (``.pte``) lowered to the XNNPACK backend (``torch.export``).

    INT8 is ExecuTorch's XNNPACK quantizer (PT2E: symmetric per-channel int8 weights, int8
    activations) calibrated on real images before lowering.
    """

    name = "executorch"
    suffix = ".pte"
    runtime = "executorch"
    int8 = "XNNPACKQuantizer PT2E (symmetric per-channel int8 weights and activations)"

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        require("executorch")
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        path = out_dir / f"model{self.suffix}"
        example = (torch.zeros(shape),)
        try:
            with _quiet(), torch.no_grad():
                module: nn.Module = source
                if precision == "int8":
                    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                        XNNPACKQuantizer,
                        get_symmetric_quantization_config,
                    )
                    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                    assert calibration is not None
                    graph = torch.export.export(source, example).module()
                    quantizer = XNNPACKQuantizer().set_global(
                        get_symmetric_quantization_config(is_per_channel=True)
                    )
                    prepared = prepare_pt2e(graph, quantizer)
                    for chunk in _batches(calibration, shape[0]):
                        prepared(torch.from_numpy(chunk))
                    module = convert_pt2e(prepared)
                program = torch.export.export(module, example)
                lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
                path.write_bytes(lowered.to_executorch().buffer)
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise _failed("ExecuTorch", source, exc) from None
        return Converted((path,))
