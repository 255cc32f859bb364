"""Per-group pruning ratios: a policy (one ratio per coupled group) applied in one step.

An automated search (AMC, He et al., ECCV 2018) gives every prunable group its own ratio;
:func:`prunable_groups` lists the groups in forward order (named by their first layer, as
:func:`check_prunable` does) and :func:`apply_prune_policy` removes each group's share of channels
with torch-pruning, leaving the output layer and unprunable groups alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from slimforge.compress.prune._structured import (
    IMPORTANCES,
    PruneResult,
    SkippedLayer,
    _check,
    _taylor_gradients,
    _tp,
)
from slimforge.errors import InvalidInputError

__all__ = ["apply_prune_policy", "check_criterion", "prunable_groups"]


def prunable_groups(
    model: nn.Module, input_shape: Sequence[int]
) -> tuple[list[str], list[SkippedLayer], list[str]]:
    """(prunable groups in forward order, skipped layers with reasons, layers to leave alone).

    Raises:
        NotTraceableError: when torch-pruning cannot trace ``model``.
        InvalidInputError: when no group can be pruned.
    """
    prunable, skipped, ignored = _check(model, input_shape)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    prunable.sort(key=lambda n: order[n])
    if not prunable:
        reasons = "; ".join(f"{s.layer} ({s.reason})" for s in skipped) or "it has no conv or linear layer"
        raise InvalidInputError(
            f"no layer group of {type(model).__name__} can be pruned structurally: {reasons}; "
            "use quantization (--auto bits) instead"
        )
    return prunable, skipped, ignored


def check_criterion(model: nn.Module, criterion: str, batches: Sequence[Any]) -> None:
    """Refuse a criterion ``model`` cannot be ranked by (``bn`` without BatchNorm, ``taylor`` without batches)."""
    IMPORTANCES.get(criterion)  # an unknown name raises with close matches
    if criterion == "bn" and not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules()
    ):
        raise InvalidInputError(
            f"criterion 'bn' ranks channels by BatchNorm scales, but {type(model).__name__} has no "
            "BatchNorm layer; use l1, l2 or taylor"
        )
    if criterion == "taylor" and not batches:
        raise InvalidInputError("the taylor criterion needs labelled batches for its gradients (batches=...)")


def apply_prune_policy(
    model: nn.Module,
    input_shape: Sequence[int],
    ratios: Mapping[str, float],
    *,
    criterion: str = "l1",
    seed: int = 0,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    ignored: Sequence[str] | None = None,
    round_to: int | None = None,
) -> PruneResult:
    """Prune each group of ``model`` by its own ratio, in place (a ratio of 0 leaves a group alone).

    Args:
        model: the network (changed in place).
        input_shape: tracing input, batch included.
        ratios: group (named by its first layer, as :func:`check_prunable` lists it) -> ratio in [0, 1).
        criterion: a name from :data:`IMPORTANCES`.
        seed: seeds the ``random`` criterion.
        batches: labelled batches for the ``taylor`` criterion.
        ignored: layers to leave alone; None finds them (and warns about each skipped layer).
        round_to: keep channel counts multiples of this (vector widths such as 8 run faster).

    Returns:
        A :class:`PruneResult` whose ``ratio`` is the mean of the per-group ratios.
    """
    tp = _tp()
    check_criterion(model, criterion, batches)
    modules = dict(model.named_modules())
    for path, r in ratios.items():
        if path not in modules:
            raise InvalidInputError(f"pruning policy names {path!r}: the model has no such layer")
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= float(r) < 1.0:
            raise InvalidInputError(f"pruning ratio {r!r} of {path!r} must lie in [0, 1)")
    skipped: list[SkippedLayer] = []
    if ignored is None:
        _, skipped, ignored = _check(model, input_shape)
        for s in skipped:
            if not s.reason.startswith("output layer"):
                warnings.warn(f"structured pruning skips {s.layer}: {s.reason}", UserWarning, stacklevel=2)
    before = sum(p.numel() for p in model.parameters())
    active = {modules[k]: float(v) for k, v in ratios.items() if v > 0 and k not in set(ignored)}
    if active:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.BasePruner(
                model,
                torch.zeros(tuple(input_shape)),
                IMPORTANCES.get(criterion)(seed),
                pruning_ratio=0.0,
                pruning_ratio_dict=active,
                ignored_layers=[modules[n] for n in ignored],
                round_to=round_to,
            )
            if criterion == "taylor":
                _taylor_gradients(model, batches)
            pruner.step()
        model.zero_grad(set_to_none=True)
    values = [float(v) for v in ratios.values()]
    return PruneResult(
        criterion=criterion,
        ratio=sum(values) / len(values) if values else 0.0,
        steps=1,
        global_pruning=False,
        num_params_before=before,
        num_params_after=sum(p.numel() for p in model.parameters()),
        skipped=tuple(skipped),
    )
