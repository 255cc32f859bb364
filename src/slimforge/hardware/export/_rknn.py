"""RKNN (Rockchip NPU) export through ``rknn-toolkit2``, here or in the toolkit's own Python.

``rknn-toolkit2`` cannot be installed beside this project's torch and numpy (it pins torch<=2.4
and numpy<=1.26), so the conversion runs either in this process, when ``rknn.api`` imports, or
in the Python given as ``rknn_python`` (a virtual environment holding the toolkit), which runs
:mod:`._rknn_tool` as a script. Either way the toolkit's simulator runs the built model on the
check images: on x86 that is the only way to run an ``.rknn`` model (the board runs it through
``rknn-toolkit-lite2``, the ``rknn`` runtime).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.hardware.export._base import Converted, Exporter, ExportError
from slimforge.hardware.runtimes._deps import available, require

__all__ = ["DEFAULT_RKNN_TARGET", "RknnExporter"]

DEFAULT_RKNN_TARGET = "rk3588"
#: seconds a conversion in the toolkit's Python may take.
_TIMEOUT_S = 1800


class RknnExporter(Exporter):
    """``.rknn`` for a Rockchip NPU (``rknn_target``, default rk3588) from the model's ONNX export.

    ``fp32`` builds the toolkit's float model (FP16 on the NPU); ``int8`` its quantized build,
    calibrated on a list of ``.npy`` images. Options: ``rknn_python`` (the toolkit's Python, when
    it is not importable here), ``rknn_target``.
    """

    name = "rknn"
    suffix = ".rknn"
    runtime = "rknn"
    takes_onnx = True
    int8 = "rknn-toolkit2 quantized build (asymmetric int8, calibration list)"

    def _convert(self, source, shape, out_dir, precision, calibration, check_images, options) -> Converted:
        from slimforge.hardware.onnx_export import export_onnx

        python = options.get("rknn_python")
        target = str(options.get("rknn_target") or DEFAULT_RKNN_TARGET)
        if python is None and not available("rknn-toolkit2"):
            require("rknn-toolkit2")  # raises the actionable MissingDependencyError
        if python is not None and not Path(python).is_file():
            raise InvalidInputError(
                f"rknn_python {python} is not a file; give the Python of an environment with rknn-toolkit2, "
                "e.g. rknn-venv/bin/python"
            )
        if shape[0] != 1:
            raise InvalidInputError(f"RKNN export takes batch 1, got input shape {shape}")
        # Absolute paths: the toolkit reads the calibration list relative to the list's own folder.
        work = out_dir.resolve() / "rknn-work"
        work.mkdir()
        onnx_path = (
            source.resolve() if isinstance(source, Path) else export_onnx(source, shape, work / "float.onnx")
        )
        path = out_dir.resolve() / f"model{self.suffix}"
        request: dict = {
            "onnx": str(onnx_path),
            "out": str(path),
            "target": target,
            "quantize": precision == "int8",
        }
        if precision == "int8":
            assert calibration is not None
            names = []
            for i, image in enumerate(calibration):
                name = work / f"calib{i}.npy"
                np.save(name, np.ascontiguousarray(image[None], dtype=np.float32), allow_pickle=False)
                names.append(str(name))
            (work / "dataset.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
            request["dataset"] = str(work / "dataset.txt")
        if check_images is not None:
            np.save(
                work / "images.npy", np.ascontiguousarray(check_images, dtype=np.float32), allow_pickle=False
            )
            request["images"] = str(work / "images.npy")
            request["outputs"] = str(work / "outputs.npy")
        reply = _run(request, python, work)
        if "error" in reply:
            raise ExportError(f"could not convert the model to RKNN ({target}): {reply['error']}")
        outputs = None
        if check_images is not None:
            outputs = np.load(work / "outputs.npy", allow_pickle=False)
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
        where = "rknn-toolkit2 simulator" + (f" ({python})" if python else "")
        return Converted((out_dir / path.name,), outputs=outputs, outputs_by=where, note=f"target {target}")


def _run(request: dict, python: str | None, work: Path) -> dict:
    if python is None:
        from slimforge.hardware.export import _rknn_tool
        from slimforge.hardware.onnx_export import _silenced

        with _silenced():  # the toolkit logs from Python and C++
            return _rknn_tool.convert(request)
    request_path = work / "request.json"
    request_path.write_text(json.dumps(request), encoding="utf-8")
    tool = Path(__file__).with_name("_rknn_tool.py")
    try:
        done = subprocess.run(
            [str(python), str(tool), str(request_path)],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"could not run the RKNN toolkit's Python {python}: {exc}") from None
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    try:
        reply = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named" in tail and "rknn" in tail:
            raise MissingDependencyError(
                f"{python} has no rknn-toolkit2; install it there (pip install rknn-toolkit2)"
            )
        raise ExportError(f"the RKNN toolkit's Python {python} failed: {tail}")
    return reply
