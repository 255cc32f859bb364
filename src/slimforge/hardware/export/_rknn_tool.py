"""RKNN conversion and simulation, run where ``rknn-toolkit2`` is installed.

This file imports nothing from slimforge: ``rknn-toolkit2`` pins torch<=2.4 and numpy<=1.26, so
it often lives in an environment of its own, whose Python runs this file as a script::

    python _rknn_tool.py REQUEST.json

The request names the ONNX file, the output ``.rknn``, the target platform, whether to
quantize (with a text file listing calibration ``.npy`` files) and an ``.npy`` of float32
check images; the simulator's outputs on them are written to ``outputs``. A one-line JSON reply
(``{"ok": true}`` or ``{"error": "..."}``) is the last line on stdout.
"""

from __future__ import annotations

import json
import sys


def convert(request: dict) -> dict:
    """Build the ``.rknn`` file and run the simulator on the check images; never raises."""
    import numpy as np

    try:
        from rknn.api import RKNN
    except ImportError as exc:
        return {"error": f"rknn-toolkit2 is not importable here ({exc})"}
    rknn = RKNN(verbose=False)
    try:
        rknn.config(target_platform=request["target"])
        if rknn.load_onnx(model=request["onnx"]) != 0:
            return {"error": "rknn-toolkit2 could not load the ONNX model"}
        quantize = bool(request["quantize"])
        if rknn.build(do_quantization=quantize, dataset=request.get("dataset") if quantize else None) != 0:
            return {"error": "rknn-toolkit2 could not build the model (see its log above)"}
        if rknn.export_rknn(request["out"]) != 0:
            return {"error": f"rknn-toolkit2 could not write {request['out']}"}
        if request.get("images"):
            if rknn.init_runtime() != 0:  # no target: the simulator
                return {"error": "rknn-toolkit2's simulator did not start"}
            images = np.load(request["images"], allow_pickle=False)
            outputs = []
            for x in images:
                out = rknn.inference(inputs=[x[None]], data_format="nchw")
                outputs.append(np.asarray(out[0], dtype=np.float32).reshape(-1))
            np.save(request["outputs"], np.stack(outputs), allow_pickle=False)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - the reply carries it
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        if lines and lines[0].startswith("Traceback"):
            lines = lines[-1:]  # the toolkit wraps its own tracebacks into the message: the cause is last
        return {"error": lines[0] if lines else type(exc).__name__}
    finally:
        rknn.release()


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as fh:
        request = json.load(fh)
    reply = convert(request)
    sys.stdout.flush()
    print(json.dumps(reply), flush=True)
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
