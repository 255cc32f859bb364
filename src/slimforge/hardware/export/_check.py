"""The output check: the converted file run on real images, compared with the PyTorch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from slimforge.errors import ModelFileError
from slimforge.hardware.export._base import batches
from slimforge.hardware.runtimes._base import first_line
from slimforge.nn import evaluating

__all__ = ["reference_outputs", "runtime_outputs"]


def reference_outputs(source: nn.Module | Path, images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The reference logits: the PyTorch model (eval mode), or ONNX Runtime on the input ``.onnx`` file."""
    if isinstance(source, nn.Module):
        out = []
        with evaluating(source), torch.no_grad():
            for i in range(0, len(images), 256):
                out.append(
                    source(torch.from_numpy(np.ascontiguousarray(images[i : i + 256]))).float().numpy()
                )
        return np.concatenate(out).reshape(len(images), -1)
    return runtime_outputs("onnxruntime", source, images, shape, threads=1)


def runtime_outputs(
    runtime: str, path: Path, images: np.ndarray, shape: tuple[int, ...], threads: int
) -> np.ndarray:
    """Logits of the file at ``path`` run by ``runtime`` on ``images`` (in chunks of the file's batch)."""
    batch = shape[0]
    chunks = batches(images, batch)
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
            raise ModelFileError(f"ONNX Runtime cannot load {path.name}: {first_line(exc)}") from None
        name = session.get_inputs()[0].name
        outs = [session.run(None, {name: c})[0] for c in chunks]
    elif runtime == "torch":
        module = torch.jit.load(str(path))
        with torch.no_grad():
            outs = [module(torch.from_numpy(c)).numpy() for c in chunks]
    else:
        from slimforge.hardware.runtime import RUNTIMES

        with RUNTIMES.get(runtime)().load(path, shape, threads) as infer:
            outs = [infer(c) for c in chunks]
    return np.concatenate([np.asarray(o, dtype=np.float32).reshape(batch, -1) for o in outs])[: len(images)]
