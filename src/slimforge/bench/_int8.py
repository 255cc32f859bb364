"""INT8 deployment of benchmark networks: ONNX export, ONNX Runtime static QDQ quantization, measurement.

Latency on this machine is the slimforge measurement protocol (median of timed runs after warm-up,
stopping once the inter-quartile range is within 10% of the median or at a time cap; interleaved
when several networks are measured together), not the co-design study's mean of 400 runs.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from slimforge.search.evaluator import DeviceEvaluator
from slimforge.spaces import Genome, SearchSpace

__all__ = ["Int8LatencyEvaluator", "export_int8", "final_protocol", "search_protocol", "seeded_calibration"]


def search_protocol(time_cap_s: float) -> Any:
    """The protocol of measured-latency searches (slimforge's ``measured_latency`` evaluator's)."""
    from slimforge.search import search_protocol as protocol

    return protocol(time_cap_s)


def final_protocol(time_cap_s: float) -> Any:
    """The default measurement protocol with a time cap of ``time_cap_s`` per network."""
    from slimforge.hardware import LatencyProtocol

    return LatencyProtocol(time_cap_s=float(time_cap_s), min_time_s=min(1.0, float(time_cap_s) / 2))


def export_int8(
    model: nn.Module, input_shape: Sequence[int], calibration: np.ndarray, out_dir: Path
) -> tuple[Path, Path]:
    """Export ``model`` (eval mode, CPU) to ``out_dir/float.onnx`` and quantize it to ``out_dir/int8.onnx``.

    Activations uint8 and weights int8 per channel, calibrated (min-max) on ``calibration``.
    """
    from slimforge.compress import quantize_onnx_int8
    from slimforge.hardware import export_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = export_onnx(model.cpu().eval(), tuple(input_shape), out_dir / "float.onnx")
    # Written beside the target, then renamed: a kill never leaves a half-written int8.onnx.
    tmp = out_dir / "int8.partial.onnx"
    quantize_onnx_int8(float_path, tmp, calibration)
    os.replace(tmp, out_dir / "int8.onnx")
    return float_path, out_dir / "int8.onnx"


class Int8LatencyEvaluator(DeviceEvaluator):
    """``latency_ms`` (median), ``latency_iqr_ms`` and ``latency_stable`` (1 or 0) of a genome's INT8 network.

    The network is built with seeded initial weights (INT8 latency does not depend on the weights'
    values), exported, quantized with ONNX Runtime's static QDQ quantizer and measured on a local
    device under :func:`search_protocol`.

    Args:
        space: the search space.
        calibration: float32 (N, C, H, W) normalised images calibrating the quantization.
        device: ``local-cpu`` (ONNX Runtime on this CPU).
        threads: intra-op threads.
        time_cap_s: seconds of timed runs per network at most.
        num_classes: classifier outputs.
        seed: the networks' initial weights and the random input.
        store_path: a run store caching the figures by ONNX hash and conditions (optional).
    """

    def __init__(
        self,
        space: SearchSpace,
        calibration: np.ndarray,
        *,
        device: str = "local-cpu",
        threads: int = 1,
        time_cap_s: float = 2.0,
        num_classes: int = 10,
        seed: int = 0,
        store_path: str | os.PathLike | None = None,
    ) -> None:
        from slimforge.hardware import get_device

        super().__init__(space, ("latency_ms", "latency_iqr_ms", "latency_stable"))
        self.calibration = np.asarray(calibration, dtype=np.float32)
        self.device = device
        self.threads = int(threads)
        self.protocol = search_protocol(time_cap_s)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.input_shape = (1, *self.calibration.shape[1:])
        self.store_path = None if store_path is None else Path(store_path)
        self._device: Any = get_device(device)
        self._store: Any = None

    def _evaluate_many(self, genomes: list[Genome]) -> list[dict[str, float]]:
        from slimforge.estimators import build_network

        device, store = self._dev(), self._cache()
        with tempfile.TemporaryDirectory(prefix="slimforge-int8-") as tmp:
            paths = []
            for i, genome in enumerate(genomes):
                net = build_network(self.space, genome, seed=self.seed, num_classes=self.num_classes).eval()
                paths.append(export_int8(net, self.input_shape, self.calibration, Path(tmp) / str(i))[1])
            results = device.measure_many(
                paths,
                self.input_shape,
                threads=self.threads,
                protocol=self.protocol,
                seed=self.seed,
                store=store,
                energy=False,
            )
        return [
            {
                "latency_ms": float(r.latency_ms),
                "latency_iqr_ms": math.nan if r.latency_ms_iqr is None else float(r.latency_ms_iqr),
                "latency_stable": 1.0 if r.stable else 0.0,
            }
            for r in results
        ]

    def describe(self) -> dict[str, Any]:
        info = self._device.describe().identity() if self._device is not None else {}
        return {
            **super().describe(),
            "device": self.device,
            "device_identity": info,
            "precision": "int8 (ONNX Runtime static QDQ, uint8 activations, per-channel int8 weights)",
            "threads": self.threads,
            "protocol": self.protocol.to_dict(),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "calibration_images": len(self.calibration),
            "seed": self.seed,
        }


def seeded_calibration(split: Any, n: int, seed: int) -> np.ndarray:
    """``n`` normalised training images drawn with ``seed`` as a float32 array."""
    from slimforge.data import calibration_batch

    return calibration_batch(split, min(n, len(split)), seed=seed).numpy().astype(np.float32)

