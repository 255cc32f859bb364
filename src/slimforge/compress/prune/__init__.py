"""Pruning: structured (channels and filters, through torch-pruning's dependency graph) and unstructured.

:func:`prune_channels` removes a share of every prunable group's channels by a criterion from
:data:`IMPORTANCES` (``l1``, ``l2``, ``bn``, ``taylor``, ``random``); :func:`check_prunable` lists
what can be pruned and why not; :func:`apply_prune_policy` prunes each group by its own ratio (the
form an automated search's policy takes). :func:`magnitude_masks` with :class:`MaskHook` is
unstructured magnitude pruning whose zeros survive finetuning.
"""

from __future__ import annotations

from slimforge.compress.prune._policy import apply_prune_policy, check_criterion, prunable_groups
from slimforge.compress.prune._sparse import (
    MaskHook,
    fitting_weights,
    magnitude_masks,
    prunable_weights,
    sparsity,
)
from slimforge.compress.prune._structured import (
    IMPORTANCES,
    NotTraceableError,
    PruneCheck,
    PruneResult,
    SkippedLayer,
    SlimmingHook,
    check_prunable,
    check_ratio,
    prune_channels,
)

__all__ = [
    "IMPORTANCES",
    "MaskHook",
    "NotTraceableError",
    "PruneCheck",
    "PruneResult",
    "SkippedLayer",
    "SlimmingHook",
    "apply_prune_policy",
    "check_criterion",
    "check_prunable",
    "check_ratio",
    "fitting_weights",
    "magnitude_masks",
    "prunable_groups",
    "prunable_weights",
    "prune_channels",
    "sparsity",
]
