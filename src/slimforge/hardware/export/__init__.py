"""Export a model to a deployment format, with an output check against PyTorch.

Formats (:data:`EXPORTERS`): ``onnx`` (ONNX Runtime), ``torchscript``, ``tflite`` (LiteRT,
through ``litert-torch``), ``openvino`` (IR), ``executorch`` (XNNPACK), ``rknn`` (Rockchip NPU,
through ``rknn-toolkit2``). INT8 goes through each format's own quantizer. The converted file is
run on real images wherever a runtime for it is installed here, and its top-1 agreement and logit
difference with the PyTorch model are reported (:class:`ExportResult`); an export below the
agreement threshold fails with the figures and leaves no file.

>>> from slimforge.hardware.export import export_model
>>> r = export_model(model, "tflite", "out/", input_shape=(1, 3, 32, 32), data="npz:cifar.npz")  # doctest: +SKIP
>>> r.top1_agreement_pct, r.max_abs_diff                                                        # doctest: +SKIP
"""

from __future__ import annotations

from slimforge.hardware.export._base import PRECISIONS, Converted, Exporter, ExportError
from slimforge.hardware.export._export import (
    DEFAULT_MIN_AGREEMENT_PCT,
    EXPORT_RECORD,
    EXPORTERS,
    ExportResult,
    convert_model,
    export_model,
)

__all__ = [
    "DEFAULT_MIN_AGREEMENT_PCT",
    "EXPORTERS",
    "EXPORT_RECORD",
    "PRECISIONS",
    "Converted",
    "ExportError",
    "ExportResult",
    "Exporter",
    "convert_model",
    "export_model",
]
