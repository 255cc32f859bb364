"""Quantization: INT8 post-training and quantization-aware (ONNX Runtime QDQ), k-means weight sharing,
binary / ternary weights, and the k-bit per-layer quantizers of mixed precision.

:func:`quantize_int8` (PTQ with verification and a float fallback for sensitive layers) and
:func:`quantize_onnx_int8` write INT8 ONNX files; :func:`to_qat` / :func:`from_qat` train with
fake-quantized INT8; :func:`share_weights` + :class:`SharedWeightHook` is Deep Compression's weight
sharing; :class:`LowBitHook` trains binary (BinaryConnect, BWN) or ternary (TWN) weights;
:data:`BIT_QUANTIZERS`, :func:`quantize_weights`, :func:`mixed_precision_bytes` and
:class:`MixedBitHook` give each layer its own weight bit-width.
"""

from __future__ import annotations

from slimforge.compress.quantize._binary import LowBitHook, binarize, first_and_last, ternarize
from slimforge.compress.quantize._int8 import (
    CALIBRATION_METHODS,
    Int8Result,
    LayerSensitivity,
    check_calibration,
    int8_sensitivity,
    onnx_weight_layers,
    quantize_int8,
    quantize_onnx_int8,
)
from slimforge.compress.quantize._kbit import (
    BIT_QUANTIZERS,
    BitSensitivity,
    MixedBitHook,
    WeightQuantizer,
    average_bits,
    bit_sensitivity,
    kmeans_quantize,
    linear_quantize,
    mixed_precision_bytes,
    quantizable_layers,
    quantize_weights,
)
from slimforge.compress.quantize._kmeans import SharedWeightHook, kmeans_1d, share_weights
from slimforge.compress.quantize._qat import FakeQuantConv2d, FakeQuantLinear, from_qat, to_qat

__all__ = [
    "BIT_QUANTIZERS",
    "CALIBRATION_METHODS",
    "BitSensitivity",
    "FakeQuantConv2d",
    "FakeQuantLinear",
    "Int8Result",
    "LayerSensitivity",
    "LowBitHook",
    "MixedBitHook",
    "SharedWeightHook",
    "WeightQuantizer",
    "average_bits",
    "binarize",
    "bit_sensitivity",
    "check_calibration",
    "first_and_last",
    "from_qat",
    "int8_sensitivity",
    "kmeans_1d",
    "kmeans_quantize",
    "linear_quantize",
    "mixed_precision_bytes",
    "onnx_weight_layers",
    "quantizable_layers",
    "quantize_int8",
    "quantize_onnx_int8",
    "quantize_weights",
    "share_weights",
    "ternarize",
    "to_qat",
]
