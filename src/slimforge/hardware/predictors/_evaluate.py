"""Evaluation on a device table: train on a seeded sample, score on every other architecture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware.predictors._base import LatencyPredictor
from slimforge.hardware.tables import DeviceTable
from slimforge.io import JsonRecord

__all__ = [
    "NETWORKS",
    "PredictorEvaluation",
    "PredictorScores",
    "evaluate_on_table",
    "resolve_network",
    "sample_rows",
    "score_predictions",
]

#: which network a table row's latency is read as: the one the benchmark timed for the row's
#: isomorphism class, the row's own, or ``auto`` (timed when the table holds one figure per class).
NETWORKS: tuple[str, ...] = ("auto", "timed", "own")
#: rows below this share of the table's median latency are left out of the filtered scores.
FILTER_SHARE_OF_MEDIAN = 0.2
BASELINES: tuple[str, ...] = ("macs_linear", "onehot_gbm")


@dataclass(frozen=True)
class PredictorScores(JsonRecord):
    """Scores of one model's predictions on the held-out rows of a table.

    ``*_filtered`` fields are over rows whose measured latency is at least
    ``min_latency_ms_filtered`` (20% of the table median), so that near-empty cells whose
    latency is a few microseconds do not dominate relative errors.
    """

    model: str
    n_train: int
    n_test: int
    spearman_rho: float
    mape_pct: float
    within_10pct_share: float
    n_test_filtered: int
    spearman_rho_filtered: float
    mape_pct_filtered: float
    within_10pct_share_filtered: float
    min_latency_ms_filtered: float


@dataclass(frozen=True)
class PredictorEvaluation(JsonRecord):
    """A predictor and its baselines trained on one seeded sample of a table and scored on the rest."""

    table: str
    source_table: str | None
    network: str
    train_size: int
    seed: int
    model: PredictorScores
    baselines: tuple[PredictorScores, ...]
    source_target_spearman_rho: float | None


def score_predictions(
    predicted_ms: np.ndarray, measured_ms: np.ndarray, *, model: str, n_train: int, table_median_ms: float
) -> PredictorScores:
    """Spearman ρ, MAPE and the share within ±10%, on all rows and on the filtered rows."""
    from scipy.stats import spearmanr

    p = np.asarray(predicted_ms, dtype=np.float64)
    y = np.asarray(measured_ms, dtype=np.float64)
    if p.shape != y.shape or len(y) < 2:
        raise InvalidInputError(
            f"need two equal-length arrays of at least 2 latencies, got {p.shape} and {y.shape}"
        )
    threshold = FILTER_SHARE_OF_MEDIAN * float(table_median_ms)
    keep = y >= threshold

    def stats(mask: np.ndarray) -> tuple[float, float, float]:
        if mask.sum() < 2:
            return float("nan"), float("nan"), float("nan")
        rel = np.abs(p[mask] - y[mask]) / y[mask]
        rho = float(spearmanr(p[mask], y[mask])[0])
        return rho, float(100 * rel.mean()), float(np.mean(rel <= 0.10))

    rho, mape, within = stats(np.ones_like(keep))
    rho_f, mape_f, within_f = stats(keep)
    return PredictorScores(
        model=model,
        n_train=int(n_train),
        n_test=len(y),
        spearman_rho=rho,
        mape_pct=mape,
        within_10pct_share=within,
        n_test_filtered=int(keep.sum()),
        spearman_rho_filtered=rho_f,
        mape_pct_filtered=mape_f,
        within_10pct_share_filtered=within_f,
        min_latency_ms_filtered=threshold,
    )


def sample_rows(num_rows: int, train_size: int, seed: int) -> np.ndarray:
    """The sorted rows of a seeded uniform sample without replacement (the training set)."""
    if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)) or train_size < 1:
        raise InvalidInputError(f"train size must be a positive int, got {train_size!r}")
    if train_size > num_rows - 2:
        raise InvalidInputError(
            f"train size {train_size} leaves fewer than 2 of the table's {num_rows} rows to score; use fewer"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_rows, size=int(train_size), replace=False))


def resolve_network(table: DeviceTable, network: str) -> str:
    """``timed`` or ``own``: ``auto`` becomes ``timed`` for tables measured once per isomorphism class."""
    if network not in NETWORKS:
        raise InvalidInputError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if network == "auto":
        return "timed" if table.shares_class_measurements() else "own"
    return network


def _feature_genomes(table: DeviceTable, network: str) -> np.ndarray:
    return table.timed_genomes() if network == "timed" else table.genomes


def _align(source: DeviceTable, target: DeviceTable) -> np.ndarray:
    """Source row of each target row; the source must hold every target architecture."""
    try:
        return source.rows_of(target.genomes)
    except SlimforgeError as exc:
        raise InvalidInputError(
            f"transfer needs a source table with every target architecture: {exc}"
        ) from None


def evaluate_on_table(
    table: DeviceTable,
    *,
    model: str = "ridge",
    train_size: int = 100,
    seed: int = 0,
    source_table: DeviceTable | None = None,
    network: str = "auto",
    baselines: bool = True,
) -> tuple[PredictorEvaluation, LatencyPredictor]:
    """Fit ``model`` on ``train_size`` rows drawn with ``seed``; score it on every other row.

    With ``source_table``, the transfer setting: ``model`` is fitted on the whole source table
    and a :class:`TransferPredictor` on the sampled target rows. The baselines (a line in MACs,
    default gradient boosting on the one-hot genome; with a source table also a line in the
    source's measured latency) are trained and scored on the same rows from the rows' own genomes.

    ``network`` says which network's features explain a row's latency: ``own`` (the row's cell),
    ``timed`` (the cell the benchmark actually measured for the row's isomorphism class, see
    :meth:`DeviceTable.timed_genomes`) or ``auto``. The source table is read the same way.

    Returns:
        the evaluation and the fitted predictor.
    """
    from slimforge.hardware.predictors import PREDICTORS, TransferPredictor

    requested, network = network, resolve_network(table, network)
    feats = _feature_genomes(table, network)
    train = sample_rows(len(table), train_size, seed)
    test = np.setdiff1d(np.arange(len(table)), train)
    y = table.latency_ms
    median = float(np.median(y))
    source_rho = None
    if source_table is None:
        if model == TransferPredictor.name:
            raise InvalidInputError("model 'transfer' needs a source device table (--source-table)")
        predictor = PREDICTORS.get(model)(seed=seed)
    else:
        if model == TransferPredictor.name:
            raise InvalidInputError(
                "with a source table, --model names the source device's model (e.g. ridge)"
            )
        from scipy.stats import spearmanr

        rows = _align(source_table, table)
        source = PREDICTORS.get(model)(seed=seed).fit(
            _feature_genomes(source_table, resolve_network(source_table, requested)), source_table.latency_ms
        )
        predictor = TransferPredictor(source, seed=seed)
        source_y = source_table.latency_ms[rows]
        source_rho = float(spearmanr(source_y, y)[0])
    predictor.fit(feats[train], y[train])
    scores = score_predictions(
        predictor.predict(feats[test]),
        y[test],
        model=predictor.name,
        n_train=len(train),
        table_median_ms=median,
    )
    base_scores = []
    if baselines:
        for name in BASELINES:
            base = PREDICTORS.get(name)(seed=seed).fit(table.genomes[train], y[train])
            base_scores.append(
                score_predictions(
                    base.predict(table.genomes[test]),
                    y[test],
                    model=name,
                    n_train=len(train),
                    table_median_ms=median,
                )
            )
        if source_table is not None:
            design = np.stack([source_y, np.ones_like(source_y)], axis=1)
            coef = np.linalg.lstsq(design[train], y[train], rcond=None)[0]
            base_scores.append(
                score_predictions(
                    design[test] @ coef,
                    y[test],
                    model="source_linear",
                    n_train=len(train),
                    table_median_ms=median,
                )
            )
    evaluation = PredictorEvaluation(
        table=table.path,
        source_table=None if source_table is None else source_table.path,
        network=network,
        train_size=len(train),
        seed=int(seed),
        model=scores,
        baselines=tuple(base_scores),
        source_target_spearman_rho=source_rho,
    )
    return evaluation, predictor
