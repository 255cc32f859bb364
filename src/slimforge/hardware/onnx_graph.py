"""Static analysis of an ONNX file: parameters, MACs, per-node table and peak activation memory.

Shapes come from ONNX shape inference with the graph input fixed to the requested shape; nodes are
taken in graph order (ONNX requires a topologically sorted graph), which is the order a simple
sequential executor runs them in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper, shape_inference

from slimforge.errors import InputShapeError, ModelFileError
from slimforge.hardware.input_shape import format_shape
from slimforge.hardware.memory import LiveTensor, peak_live_bytes

__all__ = [
    "MAC_OPS",
    "OnnxAnalysis",
    "OnnxNode",
    "analyse_onnx",
    "load_onnx",
    "onnx_input",
    "resolve_input_shape",
]

# Operators whose MACs we count; every other operator counts 0 (elementwise, pooling, reshapes).
MAC_OPS = ("Conv", "ConvInteger", "QLinearConv", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
_WEIGHT_INPUT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
# Initializers of these types are parameters; int32/int64 ones are shapes, axes and indices.
_PARAM_TYPES = {
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.BFLOAT16,
    TensorProto.DOUBLE,
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.INT4,
    TensorProto.UINT4,
}


@dataclass(frozen=True)
class OnnxNode:
    """One node of the graph; ``None`` where shape inference left a size unknown."""

    name: str
    op_type: str
    output_shape: tuple[int, ...] | None
    num_params: int
    macs: int | None
    input_bytes: int | None
    output_bytes: int | None


@dataclass(frozen=True)
class OnnxAnalysis:
    """What the graph alone tells about a model at one input shape."""

    path: str
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...] | None
    num_params: int
    nodes: tuple[OnnxNode, ...]
    macs: int | None
    peak_act_bytes: int | None
    peak_layer: str | None
    notes: tuple[str, ...]

    @property
    def peak_note(self) -> str:
        """Why the peak is missing (the relevant note), or an empty string."""
        return next((n for n in self.notes if "peak activation" in n), "")


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file.

    Raises:
        ModelFileError: naming the file, when it is missing, unreadable or not a valid ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"cannot read model file {path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, OSError, ...
        raise ModelFileError(f"{path} is not an ONNX model ({_first_line(exc)})") from None
    if not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path} is not an ONNX model (it has no graph)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
        raise ModelFileError(f"{path} is not a valid ONNX model ({_first_line(exc)})") from None
    return model


def onnx_input(model: onnx.ModelProto, path: str | Path = "model") -> tuple[str, list[int | None], int]:
    """The graph's single data input: ``(name, dims with None for symbolic ones, element type)``."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelFileError(
            f"{path} has {len(inputs)} data inputs; slimforge profiles models with exactly one"
        )
    tensor_type = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    return inputs[0].name, dims, tensor_type.elem_type


def resolve_input_shape(
    declared: list[int | None], requested: Sequence[int] | None, path: Path
) -> tuple[int, ...]:
    """The shape to run at: ``requested`` checked against the declared dims, or the declared ones."""
    shown = "x".join("?" if d is None else str(d) for d in declared)
    if requested is None:
        if any(d is None for d in declared[1:]) or not declared:
            raise InputShapeError(
                f"{path.name} has a dynamic input shape {shown}; give one with e.g. --input 1x3x224x224"
            )
        return (declared[0] or 1, *declared[1:])  # type: ignore[return-value]
    requested = tuple(requested)
    if len(requested) != len(declared):
        raise InputShapeError(
            f"input shape {format_shape(requested)} has rank {len(requested)}, but {path.name} takes a "
            f"{len(declared)}-D input {shown}"
        )
    for got, want in zip(requested, declared):
        if want is not None and got != want:
            raise InputShapeError(
                f"input shape {format_shape(requested)} does not match {path.name}'s input {shown}"
            )
    return requested


def analyse_onnx(path: str | Path, input_shape: Sequence[int] | None = None) -> OnnxAnalysis:
    """Parameters, MACs, per-node rows and peak activation bytes of an ONNX file.

    Args:
        path: the ``.onnx`` file.
        input_shape: the data input's shape; ``None`` takes the declared one (a dynamic batch → 1).
    """
    path = Path(path)
    model = load_onnx(path)
    name, declared, elem_type = onnx_input(model, path)
    shape = resolve_input_shape(declared, input_shape, path)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph_input = next(i for i in fixed.graph.input if i.name == name)
    for dim, size in zip(graph_input.type.tensor_type.shape.dim, shape):
        dim.Clear()
        dim.dim_value = size
    try:
        inferred = shape_inference.infer_shapes(fixed, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - boundary: re-raised as a SlimforgeError
        raise InputShapeError(
            f"{path.name} cannot take input shape {format_shape(shape)} ({_first_line(exc)})"
        ) from None
    graph = inferred.graph
    notes: list[str] = []

    shapes: dict[str, tuple[int, ...] | None] = {}
    itemsize: dict[str, int] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        t = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        known = t.HasField("shape") and all(d is not None for d in dims)
        shapes[info.name] = tuple(dims) if known else None  # type: ignore[arg-type]
        itemsize[info.name] = _itemsize(t.elem_type)
    weights: dict[str, tuple[int, ...]] = {}
    param_elems: dict[str, int] = {}
    for init in graph.initializer:
        weights[init.name] = tuple(init.dims)
        if init.data_type in _PARAM_TYPES:
            param_elems[init.name] = math.prod(init.dims)
    for node in graph.node:
        if node.op_type == "Constant":
            for out in node.output:
                weights[out] = ()
    for w, dims in weights.items():
        shapes.setdefault(w, dims)

    def size_of(tensor: str) -> int | None:
        dims = shapes.get(tensor)
        return None if dims is None else math.prod(dims) * itemsize.get(tensor, 4)

    rows: list[OnnxNode] = []
    live: dict[str, list[int]] = {name: [0, 0]}
    unknown_sizes: list[str] = []
    unknown_macs: list[str] = []
    row_params = dict(param_elems)  # also counts a weight reached through an Identity copy
    folded = 0
    for index, node in enumerate(graph.node):
        label = node.name or f"{node.op_type}_{index}"
        if any(
            attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute
        ):
            notes.append(f"node {label} ({node.op_type}) has subgraphs, which are not analysed")
        data_inputs = [i for i in node.input if i and i not in weights]
        if node.op_type == "Constant" or not data_inputs:
            # Computed from weights alone (an Identity copy of a shared weight, shape arithmetic):
            # a runtime folds it away, so it is weight, not activation, and not a layer.
            for out in node.output:
                weights[out] = shapes.get(out) or ()
                if node.op_type == "Identity" and node.input:
                    row_params[out] = row_params.get(node.input[0], 0)
            folded += node.op_type != "Constant"
            continue
        step = len(rows)
        for tensor in data_inputs:
            if tensor in live:
                live[tensor][1] = step
        for tensor in node.output:
            if tensor:
                live[tensor] = [step, step]
        macs = _node_macs(node, shapes)
        if macs is None:
            unknown_macs.append(label)
        in_sizes = [size_of(i) for i in data_inputs]
        out_sizes = [size_of(o) for o in node.output if o]
        rows.append(
            OnnxNode(
                name=label,
                op_type=node.op_type,
                output_shape=shapes.get(node.output[0]) if node.output else None,
                num_params=sum(row_params.get(i, 0) for i in node.input),
                macs=macs,
                input_bytes=None if None in in_sizes else sum(in_sizes),  # type: ignore[arg-type]
                output_bytes=None if None in out_sizes else sum(out_sizes),  # type: ignore[arg-type]
            )
        )
    if folded:
        notes.append(
            f"{folded} node(s) computed from weights alone (e.g. Identity copies of shared weights) "
            "count as weights, not layers"
        )
    num_steps = max(len(rows), 1)
    for out in graph.output:
        if out.name in live:
            live[out.name][1] = num_steps - 1
    tensors = []
    for tensor, (first, last) in live.items():
        size = size_of(tensor)
        if size is None:
            unknown_sizes.append(tensor)
        else:
            tensors.append(LiveTensor(size, first, last))
    peak_bytes: int | None = None
    peak_layer: str | None = None
    if unknown_sizes:
        notes.append(
            f"peak activation memory not available: shape inference left {len(unknown_sizes)} tensor(s) "
            f"without a static shape (first: {unknown_sizes[0]})"
        )
    else:
        peak_bytes, peak_step = peak_live_bytes(tensors, num_steps)
        peak_layer = rows[peak_step].name if rows else None
    if unknown_macs:
        notes.append(
            f"MACs not available: unknown shapes at {len(unknown_macs)} node(s) (first: {unknown_macs[0]})"
        )
    out_shape = shapes.get(graph.output[0].name) if graph.output else None
    return OnnxAnalysis(
        path=str(path),
        input_name=name,
        input_shape=shape,
        input_dtype=str(helper.tensor_dtype_to_np_dtype(elem_type)),
        output_shape=out_shape,
        num_params=sum(param_elems.values()),
        nodes=tuple(rows),
        macs=None if unknown_macs else sum(r.macs or 0 for r in rows),
        peak_act_bytes=peak_bytes,
        peak_layer=peak_layer,
        notes=tuple(notes),
    )


def _node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...] | None]) -> int | None:
    """MACs of one node: Conv = output elements × (C_in / groups) × kernel; (Q)Gemm/MatMul = M·N·K."""
    op = node.op_type
    if op not in MAC_OPS:
        return 0
    out = shapes.get(node.output[0])
    if op in _WEIGHT_INPUT:
        weight = shapes.get(node.input[_WEIGHT_INPUT[op]])
        if out is None or weight is None:
            return None
        return math.prod(out) * math.prod(weight[1:])
    a = shapes.get(node.input[0])
    if out is None or a is None:
        return None
    if op == "Gemm":
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
    else:
        k = a[-1]
    return math.prod(out) * k


def _itemsize(elem_type: int) -> int:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, TypeError, ValueError):
        return 4


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
