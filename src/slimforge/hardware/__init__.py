"""Hardware cost: profiling (parameters, MACs/FLOPs, peak activation memory, size), latency on every
runtime (ONNX Runtime, PyTorch, LiteRT, OpenVINO, ExecuTorch, RKNN via the agent), export to each
deployment format with an output check.

>>> from slimforge.hardware import profile_model
>>> profile = profile_model("mobilenet_v2", (1, 3, 224, 224), runtime="onnxruntime", threads=1)
>>> profile.macs, profile.peak_act_bytes, profile.latency.latency_ms_median
"""

from __future__ import annotations

from slimforge.hardware.agent import AgentServer, RemoteDevice
from slimforge.hardware.cache import open_cache
from slimforge.hardware.cost import COST_MODELS, estimate_costs
from slimforge.hardware.devices import DEVICES, Device, DeviceError, DeviceInfo, DeviceMeasurement, get_device
from slimforge.hardware.energy import HOROWITZ_45NM, EnergyEstimate, estimate_energy
from slimforge.hardware.export import EXPORTERS, ExportError, ExportResult, export_model
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
from slimforge.hardware.lut import LatencyTable, build_lut, calibrate_lut, read_lut, split_layerwise
from slimforge.hardware.lut_eval import LutEvaluation, evaluate_lut
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
from slimforge.hardware.runtimes import installed_runtimes
from slimforge.hardware.tables import DeviceTable, DeviceTableError, read_device_table

__all__ = [
    "COST_MODELS",
    "DEVICES",
    "EXPORTERS",
    "HOROWITZ_45NM",
    "MACS_NOTE",
    "PREDICTORS",
    "RUNTIMES",
    "AgentServer",
    "Device",
    "DeviceError",
    "DeviceInfo",
    "DeviceMeasurement",
    "DeviceTable",
    "DeviceTableError",
    "EnergyEstimate",
    "ExportError",
    "ExportResult",
    "LatencyPredictor",
    "LatencyProtocol",
    "LatencyResult",
    "LatencySamples",
    "LatencyTable",
    "LayerProfile",
    "LiveTensor",
    "LutEvaluation",
    "ModelProfile",
    "NB201Features",
    "OnnxExportError",
    "RemoteDevice",
    "Runtime",
    "build_lut",
    "calibrate_lut",
    "count_flops",
    "count_macs",
    "cpu_model",
    "create_predictor",
    "estimate_costs",
    "estimate_energy",
    "evaluate_lut",
    "evaluate_on_table",
    "export_model",
    "export_onnx",
    "format_shape",
    "get_device",
    "installed_runtimes",
    "load_predictor",
    "measure_latencies",
    "measure_latency",
    "model_size_bytes",
    "open_cache",
    "parse_input_shape",
    "peak_activation_bytes",
    "peak_live_bytes",
    "profile_model",
    "read_device_table",
    "read_lut",
    "sample_latencies",
    "sample_latency",
    "split_layerwise",
    "with_latency",
]
