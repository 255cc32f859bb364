"""The exporter base: convert a PyTorch model (or an ONNX file) to one deployment format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = ["PRECISIONS", "Converted", "ExportError", "Exporter"]

PRECISIONS = ("fp32", "int8")


class ExportError(SlimforgeError):
    """A conversion that fails, or whose output check falls below the agreement threshold.

    ``result`` holds the :class:`~slimforge.hardware.export.ExportResult` figures when the check
    is what failed (None when the conversion itself did).
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Converted:
    """What a converter wrote (the main file first) and, for converters that run their own
    simulator (RKNN), its outputs on the check images."""

    files: tuple[Path, ...]
    outputs: np.ndarray | None = None
    outputs_by: str = ""
    note: str = ""


class Exporter(ABC):
    """One deployment format. :meth:`convert` validates and calls the :meth:`_convert` hook.

    Attributes:
        name: the format's name (``--format``).
        suffix: the main file's suffix.
        runtime: the :data:`~slimforge.hardware.RUNTIMES` entry that runs the file (the output
            check), None when only the converter's own simulator does.
        takes_onnx: whether an ``.onnx`` file converts (else a PyTorch model is needed).
        int8: how the format quantizes to INT8 (its own quantizer), None when it has none.
    """

    name: ClassVar[str] = ""
    suffix: ClassVar[str] = ""
    runtime: ClassVar[str | None] = None
    takes_onnx: ClassVar[bool] = False
    int8: ClassVar[str | None] = None

    def convert(
        self,
        source: nn.Module | Path,
        shape: tuple[int, ...],
        out_dir: Path,
        *,
        precision: str = "fp32",
        calibration: np.ndarray | None = None,
        check_images: np.ndarray | None = None,
        options: dict[str, Any] | None = None,
    ) -> Converted:
        """Write ``source`` in this format into ``out_dir`` (as ``model<suffix>``).

        Args:
            source: a PyTorch module (eval mode) or an ``.onnx`` file.
            shape: the input shape, batch included.
            out_dir: an existing (temporary) folder.
            precision: ``fp32`` or ``int8`` (the format's own quantizer, calibrated on ``calibration``).
            calibration: float32 (N, C, H, W) normalised images for INT8.
            check_images: float32 (N, C, H, W) images a converter with its own simulator runs.
            options: format-specific settings (``rknn_python``, ``rknn_target``).
        """
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if isinstance(source, Path) and not self.takes_onnx:
            raise InvalidInputError(
                f"format {self.name} converts a PyTorch model (a zoo name or a saved model directory), "
                f"not the ONNX file {source}; an .onnx file converts to onnx, openvino or rknn"
            )
        if precision == "int8":
            if self.int8 is None:
                raise InvalidInputError(
                    f"format {self.name} has no INT8 quantizer of its own; export it as fp32 "
                    "(or quantize for onnx, tflite, openvino, executorch or rknn)"
                )
            if calibration is None or len(calibration) == 0:
                raise InvalidInputError(
                    f"an INT8 {self.name} export needs calibration images; give the data (--data SPEC)"
                )
        return self._convert(
            source, shape, out_dir, precision, calibration, check_images, dict(options or {})
        )

    @abstractmethod
    def _convert(
        self,
        source: nn.Module | Path,
        shape: tuple[int, ...],
        out_dir: Path,
        precision: str,
        calibration: np.ndarray | None,
        check_images: np.ndarray | None,
        options: dict[str, Any],
    ) -> Converted:
        """Hook: write the converted files into ``out_dir``."""


def batches(images: np.ndarray, batch: int) -> Sequence[np.ndarray]:
    """``images`` cut into chunks of the file's fixed batch (the last one padded with zeros)."""
    out = []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        out.append(np.ascontiguousarray(chunk, dtype=np.float32))
    return out
