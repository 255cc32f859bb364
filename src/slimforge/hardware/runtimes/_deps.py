"""Optional runtime packages: imported when used, with an error that says how to install them.

Each deployment runtime is an optional extra of slimforge (``pip install slimforge[litert]``).
:func:`require` imports one of their modules or raises a :class:`MissingDependencyError` naming
the extra, the package and what else works without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from slimforge.errors import MissingDependencyError

__all__ = ["OPTIONAL", "OptionalPackage", "available", "package_version", "require"]


@dataclass(frozen=True)
class OptionalPackage:
    """One optional package: the module to import, the distribution and extra that install it."""

    module: str
    distribution: str
    extra: str
    purpose: str
    note: str = ""


#: optional packages by a short key.
OPTIONAL: dict[str, OptionalPackage] = {
    p.distribution: p
    for p in (
        OptionalPackage("ai_edge_litert.interpreter", "ai-edge-litert", "litert", "the LiteRT interpreter"),
        OptionalPackage("litert_torch", "litert-torch", "litert", "PyTorch to LiteRT (.tflite) conversion"),
        OptionalPackage("ai_edge_quantizer", "ai-edge-quantizer", "litert", "LiteRT INT8 quantization"),
        OptionalPackage("openvino", "openvino", "openvino", "the OpenVINO runtime and converter"),
        OptionalPackage("nncf", "nncf", "openvino", "OpenVINO INT8 post-training quantization (NNCF)"),
        OptionalPackage(
            "executorch.runtime", "executorch", "executorch", "the ExecuTorch runtime and exporter"
        ),
        OptionalPackage(
            "rknn.api",
            "rknn-toolkit2",
            "rknn",
            "RKNN conversion and its simulator (x86)",
            "it pins torch<=2.4 and numpy<=1.26: install it in its own environment and pass its "
            "Python with --rknn-python (export_model(..., rknn_python=...))",
        ),
        OptionalPackage(
            "rknnlite.api",
            "rknn-toolkit-lite2",
            "rknn-lite",
            "the RKNN runtime on a Rockchip board (aarch64 only)",
        ),
        OptionalPackage("mlflow", "mlflow-skinny", "mlflow", "MLflow experiment tracking"),
    )
}


def _package(distribution: str) -> OptionalPackage:
    return OPTIONAL[distribution]


def available(distribution: str) -> bool:
    """Whether the optional package is importable here (without importing it)."""
    module = _package(distribution).module
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None and (
            "." not in module or importlib.util.find_spec(module) is not None
        )
    except (ImportError, ValueError):
        return False


def require(distribution: str) -> ModuleType:
    """Import the optional package's module, or raise an actionable :class:`MissingDependencyError`."""
    package = _package(distribution)
    try:
        return importlib.import_module(package.module)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        detail = "" if missing in (None, package.module.split(".")[0]) else f" (its import failed: {exc})"
        note = f"; {package.note}" if package.note else ""
        raise MissingDependencyError(
            f"{package.purpose} needs {package.distribution}, which is not installed{detail}; "
            f"pip install 'slimforge[{package.extra}]' (or pip install {package.distribution}){note}"
        ) from None


def package_version(distribution: str) -> str:
    """The installed version of a distribution (``unknown`` when its metadata is absent)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
