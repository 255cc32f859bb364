"""Deployment runtimes beside ONNX Runtime and PyTorch: LiteRT, OpenVINO, ExecuTorch, RKNN.

Each is an optional extra (``pip install slimforge[litert]``, ``[openvino]``, ``[executorch]``,
``[rknn]`` / ``[rknn-lite]``), registered in :data:`slimforge.hardware.RUNTIMES` by name and
imported only when used; a missing one raises a :class:`~slimforge.errors.MissingDependencyError`
that says what to install. Each runs files of its own format (:class:`FileRuntime`); the
devices ``local-litert``, ``local-openvino`` and ``local-executorch`` measure through them under
the same protocol as ``local-cpu`` (:mod:`slimforge.hardware.devices`).

>>> from slimforge.hardware import RUNTIMES
>>> with RUNTIMES.get("openvino")().load("model.xml", (1, 3, 32, 32)) as infer:   # doctest: +SKIP
...     logits = infer(images[:1])
"""

from __future__ import annotations

from slimforge.hardware.runtimes._base import FileRuntime, Infer
from slimforge.hardware.runtimes._deps import OPTIONAL, OptionalPackage, available, package_version, require

__all__ = [
    "OPTIONAL",
    "FileRuntime",
    "Infer",
    "OptionalPackage",
    "available",
    "installed_runtimes",
    "package_version",
    "require",
]


def installed_runtimes() -> list[str]:
    """Names of the registered runtimes whose package is importable here, sorted."""
    from slimforge.hardware.runtime import RUNTIMES

    # ONNX Runtime and PyTorch are core dependencies and name no package; a deployment runtime
    # names its optional extra (FileRuntime.package).
    packages = {name: getattr(RUNTIMES.get(name), "package", "") for name in RUNTIMES.list()}
    return [name for name, package in packages.items() if not package or available(package)]
