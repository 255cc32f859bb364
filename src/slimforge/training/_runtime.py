"""Where and how training steps run: the torch device, mixed precision, ``torch.compile``, channels-last.

These settings change how fast a step runs, not what the step computes (bf16 changes it only by
rounding), so they live apart from :class:`slimforge.training.TrainSettings` and stay out of the
fingerprints that decide whether a stage is done.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = ["PRECISIONS", "TRAIN_DEVICE_HELP", "TrainRuntime", "check_train_device", "resolve_train_device"]

PRECISIONS = ("fp32", "bf16")
TRAIN_DEVICE_HELP = "auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_train_device(spec: str, *, option: str = "--train-device") -> str:
    """``spec`` if it is written ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; otherwise InvalidInputError."""
    if not isinstance(spec, str) or not _SPEC.match(spec.strip()):
        raise InvalidInputError(f"{option} {spec!r} is not a training device; use {TRAIN_DEVICE_HELP}")
    return spec.strip()


def resolve_train_device(spec: str | torch.device, *, option: str = "--train-device") -> torch.device:
    """The torch device of ``spec``: ``auto`` is ``cuda`` when a GPU is present, else ``cpu``.

    Raises InvalidInputError naming the value and the fix when the device does not exist here
    (``cuda`` on a machine without a GPU, ``cuda:3`` with two GPUs).
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = check_train_device(spec, option=option)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(
                f"{option} {spec!r}: no CUDA GPU on this machine; use {option} cpu (or auto)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInputError(
                f"{option} {spec!r}: this machine has {torch.cuda.device_count()} GPU(s) (cuda:0.."
                f"cuda:{torch.cuda.device_count() - 1}); pick one of them"
            )
    return dev


@dataclass(frozen=True)
class TrainRuntime(JsonRecord):
    """Where and how :func:`slimforge.training.train_classifier` runs its steps.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``auto``: a GPU when there is one).
        precision: ``fp32`` or ``bf16`` (forward passes under ``torch.autocast`` with bfloat16; the
            weights, gradients and optimizer stay float32). Opt-in: see runs/notes/issue22-speedups.md
            for what it gains on which device.
        compile: run the forward pass through ``torch.compile`` (the first steps pay the compilation).
        channels_last: keep weights and images in NHWC memory order (conv-heavy networks on GPUs).
    """

    device: str = "cpu"
    precision: str = "fp32"
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_train_device(self.device, option="train device")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("compile", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def torch_device(self) -> torch.device:
        """The resolved torch device (see :func:`resolve_train_device`)."""
        return resolve_train_device(self.device, option="train device")

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Move ``model`` (in place) and return the module the steps call (compiled when asked)."""
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return torch.compile(model) if self.compile else model

    def batch(self, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``tensor`` on ``device`` in the memory order the model expects."""
        tensor = tensor.to(device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        """Mixed precision around a forward pass when ``precision`` is ``bf16``; nothing otherwise."""
        if self.precision == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
