"""How well a trained supernet ranks architectures: Kendall tau / Spearman rho against true accuracy.

Rows of a ground-truth table (``index,arch,accuracy``, e.g. NAS-Bench-201's CIFAR-10 accuracies) are
drawn with a fixed seed; each architecture gets its inherited-weight accuracy on the data set's test
part after BN re-calibration on training images; the same architectures are also ranked by their
parameter count, the trivial baseline any supernet should beat.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome, SearchSpace
from slimforge.supernet._json import json_ready
from slimforge.supernet.scoring import FINETUNE_LR, FINETUNE_STEPS, SupernetScorer

__all__ = ["RankResult", "rank_correlations", "rank_supernet", "read_accuracy_table"]


@dataclass(frozen=True)
class RankResult:
    """What :func:`rank_supernet` returns; the per-architecture lists are in drawing order.

    ``kendall_tau`` / ``spearman_rho`` rank by supernet accuracy; ``loss_kendall_tau`` /
    ``loss_spearman_rho`` by the negated supernet test loss (same forward passes); ``params_*`` by the
    number of parameters. ``truth`` says what they are measured against: ``"table"`` (the accuracy
    table's) or ``"standalone"`` (a standalone reference's, :mod:`slimforge.supernet.reference`);
    ``true_accuracy_pct`` holds it. ``images_per_s`` counts every forward image (re-calibration and
    evaluation) over ``eval_time_s``.
    """

    method: str
    space: str
    table: str | None
    seed: int
    num_architectures: int
    kendall_tau: float
    spearman_rho: float
    loss_kendall_tau: float
    loss_spearman_rho: float
    params_kendall_tau: float
    params_spearman_rho: float
    eval_split: str
    num_eval_images: int
    num_recal_images: int
    wall_time_s: float
    eval_time_s: float
    images_per_s: float
    indices: tuple[int, ...]
    true_accuracy_pct: tuple[float, ...]
    supernet_accuracy_pct: tuple[float, ...]
    supernet_loss: tuple[float, ...]
    num_params: tuple[int, ...]
    truth: str = "table"
    reference: str | None = None
    bn: str = "recalibrate"
    finetune_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, NaN becomes None)."""
        return json_ready(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankResult:
        """Inverse of :meth:`to_dict`."""
        values = {k: (float("nan") if v is None else v) for k, v in data.items()}
        for key in ("indices", "true_accuracy_pct", "supernet_accuracy_pct", "supernet_loss", "num_params"):
            values[key] = tuple(values[key])
        return cls(**values)


def read_accuracy_table(path: str | Path, space: SearchSpace) -> list[tuple[int, Genome, float]]:
    """Rows ``(index, genome, accuracy %)`` of a CSV with columns ``index,arch,accuracy``."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(
            f"accuracy table {p} does not exist; give a CSV with columns index,arch,accuracy"
        )
    rows = []
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"index", "arch", "accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInputError(
                f"accuracy table {p} lacks column(s) {', '.join(sorted(missing))}; it needs index,arch,accuracy"
            )
        for line, row in enumerate(reader, start=2):
            try:
                index, accuracy = int(row["index"]), float(row["accuracy"])
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"accuracy table {p}, line {line}: index/accuracy are not numbers"
                ) from None
            rows.append((index, space.from_string(row["arch"]), accuracy))
    if not rows:
        raise InvalidInputError(f"accuracy table {p} has no rows")
    return rows


def rank_correlations(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(Kendall tau-b, Spearman rho) of ``scores`` against ``truth`` (NaN when either is constant)."""
    from scipy.stats import kendalltau, spearmanr  # scipy comes with scikit-learn

    scores, truth = np.asarray(scores, float), np.asarray(truth, float)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(truth) == 0:
        return float("nan"), float("nan")
    return float(kendalltau(scores, truth).statistic), float(spearmanr(scores, truth).statistic)


def rank_supernet(
    checkpoint_dir: str | Path,
    table: str | Path | None = None,
    *,
    reference: str | Path | None = None,
    sample: int = 200,
    seed: int = 0,
    data: str | None = None,
    device: torch.device | str = "cpu",
    recal_images: int = 256,
    bn: str | None = None,
    batch_size: int = 256,
    finetune_steps: int = FINETUNE_STEPS,
    finetune_lr: float = FINETUNE_LR,
    progress: Callable[[int, int], None] | None = None,
) -> RankResult:
    """Rank architectures by supernet accuracy (and loss, and #parameters) against a truth.

    The architectures are ``sample`` table rows drawn with ``seed``, or with ``reference`` the
    reference's own. The truth is the table's accuracy when a table is given, otherwise the
    reference's standalone accuracy.

    Args:
        checkpoint_dir: a run directory of :func:`~slimforge.supernet.train_supernet`.
        table: CSV ``index,arch,accuracy`` (accuracy in %).
        reference: a directory of :func:`~slimforge.supernet.build_reference`.
        data: data spec to evaluate on; default the run's. Its test part is used (validation part if none).
        recal_images: training images (drawn with ``seed``) for BN re-calibration.
        bn: :data:`~slimforge.supernet.bn.BN_MODES`; None takes the run's (``TrainConfig.eval_bn``).
        finetune_steps, finetune_lr: the per-architecture fine-tune of
            :class:`~slimforge.supernet.SupernetScorer` (0 steps: inherited weights as they are).
        progress: called with (architectures done, total).
    """
    from slimforge.supernet.reference import load_reference

    if table is None and reference is None:
        raise InvalidInputError("rank against an accuracy table (--table) or a standalone reference (--reference)")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 2:
        raise InvalidInputError(f"--sample must be an integer >= 2, got {sample!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    t0 = time.perf_counter()
    scorer = SupernetScorer(
        checkpoint_dir, data=data, split="test", bn=bn, recal_images=recal_images, batch_size=batch_size,
        finetune_steps=finetune_steps, finetune_lr=finetune_lr, device=device, seed=seed,
    )
    supernet, config, eval_data = scorer.supernet, scorer.config, scorer.data
    space = supernet.space
    if reference is not None:
        ref = load_reference(reference)
        if ref.space != space.name:
            raise InvalidInputError(
                f"the reference {reference} holds {ref.space!r} networks but the supernet is {space.name!r}"
            )
        genomes = [space.from_string(a) for a in ref.architectures]
        truth_of = dict(zip(ref.architectures, ref.accuracy_pct))
        indices = [-1] * len(genomes)
        if table is not None:
            by_arch = {g: (i, acc) for i, g, acc in read_accuracy_table(table, space)}
            missing = [space.to_string(g) for g in genomes if g not in by_arch]
            if missing:
                raise InvalidInputError(f"the table {table} has no row for {missing[0]!r} of the reference")
            indices = [by_arch[g][0] for g in genomes]
            truth = np.array([by_arch[g][1] for g in genomes])
        else:
            truth = np.array([truth_of[space.to_string(g)] for g in genomes])
    else:
        rows = read_accuracy_table(table, space)  # type: ignore[arg-type]
        if sample > len(rows):
            raise InvalidInputError(f"--sample {sample} exceeds the {len(rows)} rows of {table}")
        picked = [rows[i] for i in np.random.default_rng(seed).choice(len(rows), size=sample, replace=False)]
        genomes = [genome for _, genome, _ in picked]
        indices = [int(i) for i, _, _ in picked]
        truth = np.array([acc for _, _, acc in picked])
    params = []
    for genome in genomes:
        params.append(sum(p.numel() for p in space.build(genome, supernet.num_classes).parameters()))
    t_eval = time.perf_counter()
    scores = scorer.score(
        genomes, progress=None if progress is None else (lambda done: progress(done, len(genomes)))
    )
    eval_time = time.perf_counter() - t_eval
    tau, rho = rank_correlations(np.array([s.accuracy for s in scores]), truth)
    loss_tau, loss_rho = rank_correlations(-np.array([s.loss for s in scores]), truth)
    p_tau, p_rho = rank_correlations(np.array(params, float), truth)
    return RankResult(
        method=config.method,
        space=config.space,
        table=None if table is None else str(table),
        seed=seed,
        num_architectures=len(genomes),
        kendall_tau=tau,
        spearman_rho=rho,
        loss_kendall_tau=loss_tau,
        loss_spearman_rho=loss_rho,
        params_kendall_tau=p_tau,
        params_spearman_rho=p_rho,
        eval_split=scorer.split_used,
        num_eval_images=len(eval_data.labels),
        num_recal_images=len(eval_data.recal_images) if eval_data.bn == "recalibrate" else 0,
        wall_time_s=time.perf_counter() - t0,
        eval_time_s=eval_time,
        images_per_s=len(genomes) * eval_data.images_per_architecture / eval_time if eval_time > 0 else 0.0,
        indices=tuple(indices),
        true_accuracy_pct=tuple(float(a) for a in truth),
        supernet_accuracy_pct=tuple(100.0 * s.accuracy for s in scores),
        supernet_loss=tuple(s.loss for s in scores),
        num_params=tuple(int(p) for p in params),
        truth="table" if table is not None else "standalone",
        reference=None if reference is None else str(reference),
        bn=eval_data.bn,
        finetune_steps=len(eval_data.finetune_batches),
    )
