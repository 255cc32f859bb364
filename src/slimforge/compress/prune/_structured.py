"""Structured (channel / filter) pruning through torch-pruning's dependency graph.

Removing output channels of one layer forces changes elsewhere (the BN after it, the next layer's
inputs, every layer tied to it by a residual addition). torch-pruning's dependency graph (Fang et
al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) finds these coupled *groups*; this
module scores channels per group with a criterion from :data:`IMPORTANCES`, removes the least
important share, and keeps the network consistent. Groups it cannot prune safely are found up
front by :func:`check_prunable` and skipped with a warning, never a crash.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.io import JsonRecord
from slimforge.nn import evaluating
from slimforge.registry import Registry
from slimforge.training import TrainHook

__all__ = [
    "IMPORTANCES",
    "NotTraceableError",
    "PruneCheck",
    "PruneResult",
    "SkippedLayer",
    "SlimmingHook",
    "check_prunable",
    "check_ratio",
    "prune_channels",
]


class NotTraceableError(SlimforgeError):
    """A model whose dependency graph cannot be traced (so it cannot be pruned structurally)."""


def check_ratio(ratio: object, what: str = "pruning ratio") -> float:
    """``ratio`` as a float strictly between 0 and 1, or a one-line error."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) < 1.0:
        raise InvalidInputError(f"{what} {ratio!r} must be strictly between 0 and 1, e.g. 0.5 removes half")
    return float(ratio)


def _tp() -> Any:
    try:
        import torch_pruning
    except ImportError:
        from slimforge.errors import MissingDependencyError

        raise MissingDependencyError(
            "structured pruning needs torch-pruning; pip install torch-pruning"
        ) from None
    return torch_pruning


# ---- importance criteria --------------------------------------------------------------------------


def _l1(seed: int) -> Any:
    """L1 norm of each filter's weights (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017)."""
    return _tp().importance.GroupMagnitudeImportance(p=1)


def _l2(seed: int) -> Any:
    """L2 norm of each filter's weights, summed over the coupled group (Fang et al., 2023)."""
    return _tp().importance.GroupMagnitudeImportance(p=2)


def _bn(seed: int) -> Any:
    """|gamma| of the BN after each channel (Liu et al., "Network Slimming", ICCV 2017)."""
    return _tp().importance.BNScaleImportance()


def _taylor(seed: int) -> Any:
    """First-order Taylor |w * dL/dw| (Molchanov et al., "Importance Estimation for Neural Network
    Pruning", CVPR 2019); needs gradients from a few batches."""
    return _tp().importance.GroupTaylorImportance()


def _random(seed: int) -> Any:
    """Random scores from a seeded generator: the control every criterion should beat."""
    tp = _tp()

    class SeededRandomImportance(tp.importance.Importance):
        def __init__(self) -> None:
            self.generator = torch.Generator().manual_seed(seed)

        @torch.no_grad()
        def __call__(self, group: Any) -> torch.Tensor:
            _, idxs = group[0]
            return torch.rand(len(idxs), generator=self.generator)

    return SeededRandomImportance()


#: criterion name -> function(seed) -> a torch-pruning importance.
IMPORTANCES: Registry[Callable[[int], object]] = Registry("pruning criterion")
IMPORTANCES.register("l1", _l1)
IMPORTANCES.register("l2", _l2)
IMPORTANCES.register("bn", _bn)
IMPORTANCES.register("taylor", _taylor)
IMPORTANCES.register("random", _random)


class SlimmingHook(TrainHook):
    """Network Slimming's sparsity training: an L1 penalty ``strength * |gamma|`` on every BN scale.

    Applied as the subgradient ``strength * sign(gamma)`` after ``backward`` (Liu et al., 2017, Eq. 1),
    so unimportant channels' scales are driven to zero before pruning by |gamma|.
    """

    def __init__(self, strength: float = 1e-4) -> None:
        if not strength >= 0:
            raise InvalidInputError(f"slimming strength {strength!r} must be >= 0, e.g. 1e-4")
        self.strength = strength

    def after_backward(self, model: nn.Module) -> None:
        for m in model.modules():
            if (
                isinstance(m, nn.modules.batchnorm._BatchNorm)
                and m.weight is not None
                and m.weight.grad is not None
            ):
                m.weight.grad.add_(torch.sign(m.weight.detach()), alpha=self.strength)


# ---- what can be pruned ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedLayer(JsonRecord):
    """A layer whose output channels structured pruning leaves alone, and why."""

    layer: str
    reason: str


@dataclass(frozen=True)
class PruneCheck(JsonRecord):
    """Which coupled groups of a model can be pruned (named by their first layer) and which cannot."""

    prunable: tuple[str, ...]
    skipped: tuple[SkippedLayer, ...]


def _build_graph(model: nn.Module, example: torch.Tensor) -> Any:
    tp = _tp()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tp.DependencyGraph().build_dependency(model, example_inputs=example)
    except Exception as exc:  # noqa: BLE001 - any tracing failure becomes one message
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NotTraceableError(
            f"{type(model).__name__} does not trace for structured pruning ({type(exc).__name__}: {reason}); "
            "use unstructured pruning, quantization or low-rank stages for it"
        ) from None


def _output_layers(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """The last conv/linear run whose width is the output's: its channels are the classes."""
    order: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        for h in handles:
            h.remove()
    width = out.shape[1] if out.dim() > 1 else out.shape[0]
    for m in reversed(order):
        if (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features) == width:
            return [m]
    return []


def _group_reason(group: Any, names: Mapping[nn.Module, str]) -> str | None:
    for dep, _ in group:
        m = dep.target.module
        if isinstance(m, nn.Conv2d) and 1 < m.groups and not (m.groups == m.in_channels == m.out_channels):
            return (
                f"it is tied to the grouped convolution {names.get(m, '?')} (groups={m.groups}), "
                "whose groups (and any channel shuffle after them) would no longer line up"
            )
    return None


def _root(group: Any) -> nn.Module:
    return group[0][0].target.module


def check_prunable(model: nn.Module, input_shape: Sequence[int]) -> PruneCheck:
    """List the groups structured pruning will prune and the layers it will skip, with reasons.

    Every candidate group is tried on a copy of the model (one channel removed, then a forward
    pass), so what is reported prunable is known to keep the network runnable. ``model`` is not
    changed.

    Raises:
        NotTraceableError: when the dependency graph cannot be built.
    """
    checked = _check(model, input_shape)
    return PruneCheck(tuple(checked[0]), tuple(checked[1]))


def _check(model: nn.Module, input_shape: Sequence[int]) -> tuple[list[str], list[SkippedLayer], list[str]]:
    tp = _tp()
    work = copy.deepcopy(model).eval()
    example = torch.zeros(tuple(input_shape))
    names = {m: n for n, m in work.named_modules()}
    try:
        with torch.no_grad():
            expected = work(example).shape
    except Exception as exc:  # noqa: BLE001 - the model's own error, reported in one line
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidInputError(
            f"{type(model).__name__} cannot run on input {tuple(input_shape)}: {reason}"
        ) from None
    graph = _build_graph(work, example)
    outputs = _output_layers(work, example)
    skipped = [SkippedLayer(names[m], "output layer: its channels are the classes") for m in outputs]
    prunable: list[str] = []
    ignored: list[str] = [names[m] for m in outputs]
    roots = [
        names[_root(g)]
        for g in graph.get_all_groups(ignored_layers=list(outputs), root_module_types=[nn.Conv2d, nn.Linear])
    ]
    for root_name in roots:
        root = work.get_submodule(root_name)
        fn = tp.prune_conv_out_channels if isinstance(root, nn.Conv2d) else tp.prune_linear_out_channels
        width = root.out_channels if isinstance(root, nn.Conv2d) else root.out_features
        reason = "a single channel is left" if width < 2 else None
        group = graph.get_pruning_group(root, fn, [width - 1]) if reason is None else None
        reason = reason or _group_reason(group, names)
        if reason is not None:  # known without trying: nothing was touched
            skipped.append(SkippedLayer(root_name, reason))
            ignored.append(root_name)
            continue
        try:
            group.prune()
            with torch.no_grad():
                got = work(example).shape
            if got != expected:
                reason = f"pruning it changes the output shape from {tuple(expected)} to {tuple(got)}"
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the group is skipped
            reason = (
                "removing a channel breaks the forward pass: "
                + ((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            )
        if reason is None:
            prunable.append(root_name)
            continue
        skipped.append(SkippedLayer(root_name, reason))
        ignored.append(root_name)
        # The trial may have left the copy broken: start again from the model, redoing the good trials.
        work = copy.deepcopy(model).eval()
        names = {m: n for n, m in work.named_modules()}
        graph = _build_graph(work, example)
        for name in prunable:
            layer = work.get_submodule(name)
            f = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
            w = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            graph.get_pruning_group(layer, f, [w - 1]).prune()
    return prunable, skipped, ignored


# ---- pruning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult(JsonRecord):
    """What :func:`prune_channels` did: parameters before/after, the layers skipped, the schedule."""

    criterion: str
    ratio: float
    steps: int
    global_pruning: bool
    num_params_before: int
    num_params_after: int
    skipped: tuple[SkippedLayer, ...]


def _taylor_gradients(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    model.zero_grad(set_to_none=True)
    with evaluating(model):  # BN statistics must not move while scoring
        for images, labels in batches:
            nn.functional.cross_entropy(model(images), labels).backward()


def prune_channels(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    criterion: str = "l1",
    ratio: float = 0.5,
    layer_ratios: Mapping[str, float] | None = None,
    global_pruning: bool = False,
    steps: int = 1,
    round_to: int | None = None,
    seed: int = 0,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    finetune: Callable[[nn.Module, int], None] | None = None,
) -> PruneResult:
    """Remove ``ratio`` of the output channels of every prunable group of ``model``, in place.

    Args:
        model: the network (changed in place; copy it first to keep the original).
        input_shape: an input shape for tracing, batch included.
        criterion: a name from :data:`IMPORTANCES` (``l1``, ``l2``, ``bn``, ``taylor``, ``random``).
        ratio: share of channels removed per group (uniform), strictly between 0 and 1.
        layer_ratios: per-layer ratios by module path (a block's path covers its layers), overriding
            ``ratio`` there.
        global_pruning: rank all groups together (channel counts then differ per layer).
        steps: iterative schedule: prune ``ratio * k / steps`` at step k, calling ``finetune``
            after each step (Han et al., 2015; Molchanov et al., 2017).
        round_to: keep channel counts multiples of this (vector units like 4 or 8).
        seed: seeds the ``random`` criterion.
        batches: labelled batches for the ``taylor`` criterion's gradients.
        finetune: ``finetune(model, step)`` run after each pruning step.

    Returns:
        The parameter counts and the layers skipped (each also raised as a ``UserWarning``).
    """
    tp = _tp()
    ratio = check_ratio(ratio)
    layer_ratios = {k: check_ratio(v, f"pruning ratio of {k!r}") for k, v in (layer_ratios or {}).items()}
    importance = IMPORTANCES.get(criterion)(seed)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidInputError(f"pruning steps {steps!r} must be a positive integer")
    if criterion == "taylor" and not batches:
        raise InvalidInputError("the taylor criterion needs labelled batches for its gradients (batches=...)")
    modules = dict(model.named_modules())
    for path in layer_ratios:
        if path not in modules:
            raise InvalidInputError(f"per-layer pruning ratio for {path!r}: the model has no such layer")
    before = sum(p.numel() for p in model.parameters())
    _, skipped, ignored = _check(model, input_shape)
    for s in skipped:
        warnings.warn(f"structured pruning skips {s.layer}: {s.reason}", UserWarning, stacklevel=2)
    example = torch.zeros(tuple(input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.BasePruner(
            model,
            example,
            importance,
            global_pruning=global_pruning,
            pruning_ratio=ratio,
            pruning_ratio_dict={modules[k]: v for k, v in layer_ratios.items()},
            iterative_steps=steps,
            ignored_layers=[modules[n] for n in ignored],
            round_to=round_to,
        )
    for step in range(steps):
        if criterion == "taylor":
            _taylor_gradients(model, batches)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner.step()
        model.zero_grad(set_to_none=True)
        if finetune is not None:
            finetune(model, step)
    return PruneResult(
        criterion=criterion,
        ratio=ratio,
        steps=steps,
        global_pruning=global_pruning,
        num_params_before=before,
        num_params_after=sum(p.numel() for p in model.parameters()),
        skipped=tuple(skipped),
    )
