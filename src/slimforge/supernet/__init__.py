"""Supernet training and inherited-weight evaluation.

Trainers live in :data:`TRAINERS` (``spos``, ``fairnas``, ``sandwich`` for any supernet; ``darts``,
``gdas``, ``rsps``, the co-design study's baselines, for NAS-Bench-201; ``fbnet``, ``proxyless``, the
hardware-aware ones, whose architecture step sees the expected latency of a device's lookup table or
predictor, :class:`ArchCosts`, for NAS-Bench-201 and the layer-wise spaces). :func:`train_supernet` runs a
:class:`TrainConfig` with checkpoints and resume; :func:`evaluate` / :func:`evaluate_many` give a
sub-network's accuracy after BN re-calibration; :func:`rank_supernet` measures how well the supernet
ranks architectures against a ground-truth table.

>>> from slimforge.supernet import TrainConfig, train_supernet, rank_supernet
>>> cfg = TrainConfig(data="npz:../shared/data/cifar10_subset.npz", epochs=20, method="spos")
>>> train_supernet(cfg, "/tmp/run")                                   # doctest: +SKIP
>>> rank_supernet("/tmp/run", "../shared/data/nb201/accuracy_cifar10.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from slimforge.supernet._build import make_supernet
from slimforge.supernet._costs import ArchCosts, load_arch_costs
from slimforge.supernet._registry import TRAINERS
from slimforge.supernet._trainer import SupernetTrainer
from slimforge.supernet.bn import BN_MODES, recalibrate_bn
from slimforge.supernet.checkpoint import load_checkpoint, load_supernet, save_checkpoint
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData, SubnetScore, evaluate, evaluate_many, score_many
from slimforge.supernet.rank import RankResult, rank_correlations, rank_supernet, read_accuracy_table
from slimforge.supernet.reference import Reference, build_reference, load_reference
from slimforge.supernet.scoring import SupernetScorer
from slimforge.supernet.train import TrainProgress, TrainResult, resolve_device, train_supernet

__all__ = [
    "BN_MODES",
    "TRAINERS",
    "ArchCosts",
    "EvalData",
    "RankResult",
    "Reference",
    "SubnetScore",
    "SupernetScorer",
    "SupernetTrainer",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "build_reference",
    "evaluate",
    "evaluate_many",
    "list_methods",
    "load_arch_costs",
    "load_checkpoint",
    "load_reference",
    "load_supernet",
    "make_supernet",
    "rank_correlations",
    "rank_supernet",
    "read_accuracy_table",
    "recalibrate_bn",
    "resolve_device",
    "save_checkpoint",
    "score_many",
    "train_supernet",
]


def list_methods() -> list[str]:
    """Names of the supernet training methods."""
    return TRAINERS.list()
