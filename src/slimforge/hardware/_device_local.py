"""This machine's CPU as a device: ONNX Runtime (``local-cpu``) and PyTorch eager (``local-torch``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware._device_base import Device, MeasureSettings
from slimforge.hardware._device_records import DeviceInfo, DeviceMeasurement, PreparedModel, local_info
from slimforge.hardware.latency import measure_latencies

__all__ = [
    "LocalDevice",
    "LocalOrtDevice",
    "LocalTorchDevice",
    "convert_beside",
    "prepare_onnx",
    "sha256_file",
]

# ONNX operators that make a graph an INT8 model (QDQ format or integer operators).
_INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}
)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_onnx(model: Any, shape: tuple[int, ...] | None, onnx_path: Path, device: str) -> PreparedModel:
    """An ``.onnx`` file (checked, its input shape resolved) or an ``nn.Module`` exported to ``onnx_path``."""
    from slimforge.hardware.onnx_export import export_onnx
    from slimforge.hardware.onnx_graph import load_onnx, onnx_input, resolve_input_shape

    if isinstance(model, nn.Module):
        if shape is None:
            raise InvalidInputError(
                f"device {device}: give the input shape of the {type(model).__name__} model, "
                "e.g. (1, 3, 32, 32)"
            )
        path = export_onnx(model, shape, onnx_path)
        return PreparedModel(type(model).__name__, shape, sha256_file(path), onnx_path=path, precision="fp32")
    if not isinstance(model, (str, Path)):
        raise InvalidInputError(
            f"device {device} measures an .onnx file or a PyTorch model, got {type(model).__name__}"
        )
    path = Path(model)
    proto = load_onnx(path)
    _, declared, _ = onnx_input(proto, path)
    resolved = resolve_input_shape(declared, shape, path)
    precision = "int8" if any(n.op_type in _INT8_OPS for n in proto.graph.node) else "fp32"
    return PreparedModel(str(model), resolved, sha256_file(path), onnx_path=path, precision=precision)


def convert_beside(model: nn.Module, fmt: str, onnx_path: Path, shape: tuple[int, ...]) -> Path:
    """``model`` converted to export format ``fmt`` in a new folder beside ``onnx_path``; its model file."""
    from slimforge.hardware.export import convert_model

    folder = onnx_path.with_name(f"{onnx_path.stem}-{fmt}")
    folder.mkdir()
    return convert_model(model, fmt, folder, input_shape=shape).files[0]


class LocalDevice(Device):
    """This machine's CPU measured with :attr:`runtime`; prepared models are files (``onnx_path``), or
    modules on ``local-torch``, that :meth:`_measure` times one interleaved call per :meth:`_groups`."""

    def describe(self) -> DeviceInfo:
        assert self.runtime is not None
        return local_info(self.kind, self.runtime)

    def _measure(self, models: Sequence[PreparedModel], settings: MeasureSettings) -> list[DeviceMeasurement]:
        info = self.describe()
        out: list[DeviceMeasurement] = [None] * len(models)  # type: ignore[list-item]
        for group in self._groups(models):
            results = measure_latencies(
                # A module runs as itself (local-torch); everything else runs its file.
                [models[i].onnx_path if models[i].onnx_path is not None else models[i].module for i in group],
                models[group[0]].input_shape,
                runtime=self.runtime,
                threads=settings.threads,
                protocol=settings.protocol,
                seed=settings.seed,
                progress=settings.progress,
            )
            for i, result in zip(group, results):
                out[i] = DeviceMeasurement.from_latency(self.spec, info, models[i], result, settings.threads)
        return out

    def _groups(self, models: Sequence[PreparedModel]) -> list[list[int]]:
        """Indices of the models timed in one interleaved call: those of one input shape."""
        shapes = dict.fromkeys(m.input_shape for m in models)
        return [[i for i, m in enumerate(models) if m.input_shape == shape] for shape in shapes]


class LocalOrtDevice(LocalDevice):
    """This machine's CPU with ONNX Runtime (``local-cpu``): ``.onnx`` files (FP32, INT8 QDQ) or modules."""

    kind = "local-cpu"
    runtime = "onnxruntime"

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        return prepare_onnx(model, shape, onnx_path, self.spec)


class LocalTorchDevice(LocalDevice):
    """This machine's CPU with PyTorch eager (``local-torch``): ``nn.Module`` models only."""

    kind = "local-torch"
    runtime = "torch"

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        if not isinstance(model, nn.Module):
            raise InvalidInputError(
                f"device {self.spec} runs PyTorch models, not {model!r}; "
                "use --device local-cpu for an .onnx file"
            )
        if shape is None:
            raise InvalidInputError(f"device {self.spec}: give the input shape, e.g. --input 1x3x32x32")
        digest = None
        if need_hash:
            # The cache key is the hash of the model's ONNX export, as for every other device.
            from slimforge.hardware.onnx_export import export_onnx

            digest = sha256_file(export_onnx(model, shape, onnx_path))
        return PreparedModel(type(model).__name__, shape, digest, module=model, precision="fp32")

    def _groups(self, models: Sequence[PreparedModel]) -> list[list[int]]:
        # Modules of different shapes cannot share one interleaved call: each runs in a call of its own.
        return [[i] for i in range(len(models))]
