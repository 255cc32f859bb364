"""The measurement cache: measured figures kept in a run store, keyed by their conditions.

A figure is stored under the canonical JSON of everything that determines it: the model (SHA-256
of its ONNX bytes), the device (CPU, host, runtime and version), the threads, the batch size and
input shape, and the protocol (warm-up and stopping rule). The same model is therefore never
measured twice under the same conditions unless the caller forces it, and figures taken under
different conditions never answer for one another. Unstable figures are cached too, with their
``stable=False`` flag: re-measure them with ``force=True`` (``--force``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimforge.errors import InvalidInputError
from slimforge.hardware.latency import LatencyProtocol

if TYPE_CHECKING:
    from slimforge.hardware.devices import PreparedModel
    from slimforge.io import RunStore

__all__ = ["CACHE_FORMAT", "STORE_FILE", "measurement_conditions", "open_cache"]

#: bumped when the meaning of a cached row changes, so older rows stop matching.
CACHE_FORMAT = 1
#: the run store's file name inside a run directory.
STORE_FILE = "store.sqlite"


def measurement_conditions(
    model: PreparedModel, device: dict[str, Any], threads: int, protocol: LatencyProtocol
) -> dict[str, Any]:
    """The cache key of one measurement (a JSON object; the store keys it by its canonical text).

    Args:
        model: the prepared model (its ``sha256`` and ``input_shape`` must be set).
        device: :meth:`DeviceInfo.identity` of the device.
        threads: intra-op threads.
        protocol: the latency protocol.
    """
    if model.sha256 is None or model.input_shape is None:
        raise InvalidInputError(
            f"cannot cache a measurement of {model.label}: its ONNX hash or input shape is unknown"
        )
    return {
        "cache_format": CACHE_FORMAT,
        "model_sha256": model.sha256,
        "device": device,
        "runtime": device.get("runtime"),
        "runtime_version": device.get("runtime_version"),
        "threads": threads,
        "batch_size": model.input_shape[0],
        "input_shape": list(model.input_shape),
        "protocol": protocol.to_dict(),
    }


def open_cache(path: str | os.PathLike) -> RunStore:
    """Open (or create) the run store at ``path``: a run directory (its ``store.sqlite``) or a database file.

    A path that does not exist yet is taken as a run directory when it has no suffix and as a
    database file otherwise.
    """
    from slimforge.io import RunStore

    path = Path(path)
    if path.is_dir() or (not path.exists() and not path.suffix):
        path = path / STORE_FILE
    return RunStore(path)
