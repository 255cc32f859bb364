"""Hardware cost: profiling (parameters, MACs/FLOPs, peak activation memory, size), latency, ONNX export.

>>> from slimforge.hardware import profile_model
>>> profile = profile_model("mobilenet_v2", (1, 3, 224, 224), runtime="onnxruntime", threads=1)
>>> profile.macs, profile.peak_act_bytes, profile.latency.latency_ms_median
"""

from __future__ import annotations

from slimforge.hardware.flops import MACS_NOTE, count_flops, count_macs
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.latency import (
    LatencyProtocol,
    LatencyResult,
    LatencySamples,
    cpu_model,
    measure_latencies,
    measure_latency,
    sample_latencies,
    sample_latency,
)
from slimforge.hardware.memory import LiveTensor, peak_activation_bytes, peak_live_bytes
from slimforge.hardware.onnx_export import OnnxExportError, export_onnx
from slimforge.hardware.predictors import (
    PREDICTORS,
    LatencyPredictor,
    NB201Features,
    create_predictor,
    evaluate_on_table,
    load_predictor,
)
from slimforge.hardware.profile import (
    LayerProfile,
    ModelProfile,
    model_size_bytes,
    profile_model,
    with_latency,
)
from slimforge.hardware.runtime import RUNTIMES, Runtime
from slimforge.hardware.tables import DeviceTable, DeviceTableError, read_device_table

__all__ = [
    "PREDICTORS",
    "DeviceTable",
    "DeviceTableError",
    "LatencyPredictor",
    "NB201Features",
    "create_predictor",
    "evaluate_on_table",
    "load_predictor",
    "read_device_table",
    "MACS_NOTE",
    "RUNTIMES",
    "LatencyProtocol",
    "LatencyResult",
    "LatencySamples",
    "LayerProfile",
    "LiveTensor",
    "ModelProfile",
    "OnnxExportError",
    "Runtime",
    "count_flops",
    "count_macs",
    "cpu_model",
    "export_onnx",
    "format_shape",
    "measure_latencies",
    "measure_latency",
    "model_size_bytes",
    "parse_input_shape",
    "peak_activation_bytes",
    "peak_live_bytes",
    "profile_model",
    "sample_latencies",
    "sample_latency",
    "with_latency",
]
