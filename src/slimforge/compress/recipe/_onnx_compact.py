"""Shorter ONNX files: the same graph with short tensor names, no node names, no shape annotations.

The TorchScript exporter and ONNX Runtime's quantizer name every tensor after the module path and
the pass that made it (``/stages/stages.3/conv1/conv1.0/Conv_output_0_QuantizeLinear``); in a
small INT8 model those strings are a third of the file. The runtime needs none of them: node names
are optional in ONNX, intermediate tensor names only have to be unique, and shapes of intermediate
tensors (``value_info``) are inferred again at load time. The graph's input and output names are
kept, so callers feed and read the model as before.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["compact_onnx"]


def _short(i: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        i, r = divmod(i, 36)
        out = digits[r] + out
        if i == 0:
            return "t" + out


def compact_onnx(path: str | Path) -> int:
    """Rewrite the ONNX file at ``path`` with short names and without ``value_info``; returns its size.

    Models with sub-graphs (If/Loop/Scan) are left as they are (their names are scoped).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in graph.node
        for a in n.attribute
    ):
        return path.stat().st_size
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in names:
            names[name] = _short(len(names))
        return names[name]

    for init in graph.initializer:
        init.name = rename(init.name)
    for node in graph.node:
        node.name = ""
        node.doc_string = ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    del graph.value_info[:]
    graph.doc_string = ""
    model.doc_string = ""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.stat().st_size
