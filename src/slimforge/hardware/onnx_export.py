"""Export a PyTorch model to ONNX, the deployment format ONNX Runtime measures."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from slimforge.errors import SlimforgeError
from slimforge.hardware.input_shape import check_input_shape, parse_input_shape, shape_error
from slimforge.io import atomic_path
from slimforge.nn import evaluating

__all__ = [
    "INPUT_NAME",
    "OPSET_VERSION",
    "OUTPUT_NAME",
    "OnnxExportError",
    "export_onnx",
    "quiet_root_logger",
]

OPSET_VERSION = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


class OnnxExportError(SlimforgeError):
    """A model that the ONNX exporter cannot convert."""


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """Raise the root logger to ERROR for the block: ONNX Runtime's quantizer and the converters log
    advice through it, which would break one-line CLI output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Drop what the exporter prints, from Python and from C++ (which writes to file descriptors 1 and 2)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with (
            tempfile.TemporaryFile() as sink,
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def export_onnx(model: nn.Module, input_shape: Sequence[int] | str, path: str | Path) -> Path:
    """Write ``model`` (in eval mode) as an ONNX file for a fixed ``input_shape``; returns the path.

    Uses the TorchScript exporter (``dynamo=False``, opset 17), which handles every zoo model
    without extra dependencies. The file is written atomically (:func:`slimforge.io.atomic_path`),
    so a reader never sees a half-written file. The model is given back in its
    original mode.

    Raises:
        InputShapeError: when the model cannot take ``input_shape``.
        OnnxExportError: when the exporter fails for another reason.
    """
    shape = parse_input_shape(input_shape)
    check_input_shape(model, shape)
    path = Path(path)
    x = torch.zeros(shape)
    with atomic_path(path, suffix=".onnx") as tmp, evaluating(model), torch.no_grad():
        try:
            model(x)  # a shape error here is the user's input, not the exporter's
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise shape_error(model, shape, exc) from None
        # The legacy exporter warns about its own deprecation and prints tracer notes; neither is
        # actionable here.
        with warnings.catch_warnings(), _silenced():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    model,
                    (x,),
                    str(tmp),
                    dynamo=False,
                    opset_version=OPSET_VERSION,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    do_constant_folding=True,
                )
            except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise OnnxExportError(f"could not export {type(model).__name__} to ONNX: {reason}") from None
    return path
