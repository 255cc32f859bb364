"""A restricted reader for the pickled CIFAR "python version" batches.

The python layout of CIFAR-10/100 is a pickle, and an ordinary ``pickle.load`` runs whatever code a
file names. Instead of trusting the directory, this unpickler resolves only the few globals a CIFAR
batch needs (numpy's array reconstructor, ``ndarray``, ``dtype``, and ``_codecs.encode`` restricted
to latin-1, which Python 3 writes for bytes in protocol 2); dicts, lists, tuples, bytes, strings
and numbers need no globals. Anything else fails before it is called, so a hostile file raises a
:class:`DataError` instead of running code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.data._errors import DataError

__all__ = ["load_restricted_pickle"]

# The function numpy pickles arrays with, taken from numpy itself so that both its old
# ("numpy.core") and new ("numpy._core") module names map to it without importing either.
_RECONSTRUCT = np.array(0).__reduce__()[0]


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin-1", errors)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR batch never holds"
            ) from None


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in value.items()}
    return value


def load_restricted_pickle(path: Path) -> dict[str, Any]:
    """Read the dict pickled in ``path`` allowing only plain containers and numpy arrays; keys become str."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        # encoding="bytes": the official files were written by Python 2, whose str is bytes.
        obj = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a corrupt or hostile pickle can raise anything
        raise DataError(f"{path}: not a CIFAR python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR python batch (holds a {type(obj).__name__}, expected a dict)")
    return _text_keys(obj)
