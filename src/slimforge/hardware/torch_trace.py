"""One traced forward pass of a PyTorch model: per-layer FLOPs and shapes, and activation liveness.

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`; a layer's share is the growth of
its running total between the layer's forward pre-hook and forward hook (minus nested layers), so
a module called twice gets one row per call. Liveness comes from a dispatcher-level trace (every
aten op, including functional adds, concatenations and views), keyed by storage, so views and
in-place ops do not count as new buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from slimforge.errors import InputShapeError
from slimforge.hardware.input_shape import check_input_shape, shape_error
from slimforge.hardware.memory import LiveTensor, peak_live_bytes
from slimforge.nn import evaluating

__all__ = ["OUTSIDE_LAYERS", "LayerCall", "TorchTrace", "trace_model"]

OUTSIDE_LAYERS = "(outside layers)"


@dataclass(frozen=True)
class LayerCall:
    """One call of one layer (a leaf module, or a module holding its own parameters)."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    num_params: int
    flops: int
    input_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class TorchTrace:
    """What one forward pass revealed; ``peak_layer`` is the layer running at the peak step."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: tuple[LayerCall, ...]
    total_flops: int
    peak_act_bytes: int
    peak_layer: str
    num_ops: int


@dataclass
class _Frame:
    name: str
    start_flops: int
    inputs: tuple[Any, ...]
    child_flops: int = 0


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _nbytes(tree: Any) -> int:
    return sum(t.numel() * t.element_size() for t in _tensors(tree))


class _LivenessMode(TorchDispatchMode):
    """Records, per storage, the first and last aten op that touches it."""

    def __init__(self, weight_keys: set[int], owner: Any) -> None:
        super().__init__()
        self.weight_keys = weight_keys
        self.owner = owner
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.nbytes: dict[int, int] = {}
        self.owners: list[str] = []
        # Strong references, so that no storage is freed mid-trace and its address reused by a new one.
        self._keep: list[torch.Tensor] = []

    def add(self, tensor: torch.Tensor, step: int, produced: bool) -> None:
        storage = tensor.untyped_storage()
        size = storage.nbytes()
        key = storage.data_ptr()
        if size == 0 or key in self.weight_keys:
            return
        if key in self.first:
            self.last[key] = max(self.last[key], step)
            self.nbytes[key] = max(self.nbytes[key], size)
        elif produced:
            self.first[key] = self.last[key] = step
            self.nbytes[key] = size
            self._keep.append(tensor)
        # else: a tensor made outside the forward pass and held by the model (a constant): not an activation.

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        step = len(self.owners)
        self.owners.append(self.owner())
        for t in _tensors((args, kwargs)):
            self.add(t, step, produced=False)
        for t in _tensors(out):
            self.add(t, step, produced=True)
        return out

    def live_tensors(self) -> list[LiveTensor]:
        return [LiveTensor(self.nbytes[k], self.first[k], self.last[k]) for k in self.first]


def _is_layer(module: nn.Module) -> bool:
    if type(module) is nn.Identity:  # stands in for an absent layer; not a layer itself
        return False
    has_children = next(module.children(), None) is not None
    owns_state = next(module.parameters(recurse=False), None) is not None
    return not has_children or owns_state


def trace_model(model: nn.Module, input_shape: Sequence[int], seed: int = 0) -> TorchTrace:
    """Run one forward pass of ``model`` (eval mode, no grad) at ``input_shape`` and trace it.

    The model is given back in its original mode, without hooks.

    Raises:
        InputShapeError: when the model cannot take ``input_shape``.
    """
    shape = tuple(int(d) for d in input_shape)
    check_input_shape(model, shape)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    weight_keys = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    stack: list[_Frame] = []
    calls: list[LayerCall] = []
    seen: dict[str, int] = {}
    flop_mode = FlopCounterMode(display=False)

    def owner() -> str:
        return stack[-1].name if stack else OUTSIDE_LAYERS

    def pre_hook(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            stack.append(_Frame(label, flop_mode.get_total_flops(), args))

        return hook

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        frame = stack.pop()
        total = flop_mode.get_total_flops() - frame.start_flops
        if stack:
            stack[-1].child_flops += total
        outs = _tensors(output)
        calls.append(
            LayerCall(
                name=frame.name,
                type=type(module).__name__,
                output_shape=tuple(outs[0].shape) if outs else (),
                num_params=sum(p.numel() for p in module.parameters(recurse=False))
                if next(module.children(), None) is not None
                else sum(p.numel() for p in module.parameters()),
                flops=total - frame.child_flops,
                input_bytes=_nbytes(frame.inputs),
                output_bytes=_nbytes(output),
            )
        )

    handles = []
    for name, module in model.named_modules():
        if _is_layer(module):
            label = name or type(module).__name__
            handles.append(module.register_forward_pre_hook(pre_hook(label)))
            handles.append(module.register_forward_hook(post_hook))
    live = _LivenessMode(weight_keys, owner)
    try:
        with evaluating(model), torch.no_grad(), flop_mode, live:
            live.add(x, 0, produced=True)
            output = model(x)
    except InputShapeError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises several types for shapes
        raise shape_error(model, shape, exc) from None
    finally:
        for h in handles:
            h.remove()
    num_ops = max(len(live.owners), 1)
    for t in _tensors(output):
        live.add(t, num_ops - 1, produced=True)
    peak, peak_step = peak_live_bytes(live.live_tensors(), num_ops)
    total_flops = flop_mode.get_total_flops()
    outside = total_flops - sum(c.flops for c in calls)
    if outside:
        calls.append(LayerCall(OUTSIDE_LAYERS, "functional", (), 0, outside, 0, 0))
    outs = _tensors(output)
    return TorchTrace(
        input_shape=shape,
        output_shape=tuple(outs[0].shape) if outs else (),
        layers=tuple(calls),
        total_flops=total_flops,
        peak_act_bytes=peak,
        peak_layer=live.owners[peak_step] if live.owners else OUTSIDE_LAYERS,
        num_ops=len(live.owners),
    )
