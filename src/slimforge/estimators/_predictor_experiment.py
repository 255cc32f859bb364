"""How well do learned predictors rank a space's architectures? Train on a seeded few, test on the rest.

:func:`evaluate_accuracy_predictor` shuffles the rows of a ground-truth table with ``seed``, fits a
predictor on the first ``train`` rows and scores its predictions on the remaining rows (all of them,
or the next ``test_sample`` when proxy scores make every test architecture costly): Spearman ρ,
Kendall τ, how many of the truly best architectures it ranks at the top, and the CPU seconds of the
fit and of the prediction. Rows are the table's rows, not deduplicated; genomes are encoded (and
networks scored) in their canonical form, as :func:`~slimforge.estimators.evaluate_proxies` does, so
rows whose cells compute the same function get the same prediction. ``repeats`` runs seeds
``seed, seed + 1, ...``; the report gives each run and the medians.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.estimators._ranking import correlate
from slimforge.estimators._table import AccuracyTable, read_accuracy_table
from slimforge.estimators.predictors import PREDICTORS, AccuracyPredictor, proxy_features
from slimforge.estimators.proxies import PROXIES
from slimforge.spaces import SearchSpace, get_space

__all__ = ["PredictorReport", "PredictorRun", "evaluate_accuracy_predictor"]


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _none_to_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class PredictorRun:
    """One seed's fit and its scores on the test rows.

    Attributes:
        seed: seeds the shuffle of the table (training rows, test subset) and the fit.
        num_test: test rows scored.
        spearman_rho / kendall_tau: predictions against the table over the test rows.
        num_unseen: test rows whose canonical genome no training row has.
        spearman_rho_unseen: ρ over those rows only (the rest share a cell with a training row).
        top_pct: the share of the test rows, in percent, that counts as "the best".
        top_overlap: share of the truly best ``top_pct`` % of test rows among the predicted best
            ``top_pct`` %.
        best_predicted_accuracy: true accuracy (%) of the test row predicted best.
        best_accuracy: the highest true accuracy (%) among the test rows.
        mae_pct: mean absolute error of the predicted accuracy, in accuracy points.
        fit_cpu_s: CPU seconds of the fit (all threads).
        predict_cpu_s: CPU seconds to predict every test row.
        proxy_cpu_s_per_arch: CPU seconds per architecture of the proxy features (network
            construction included; as first measured when read from the cache), 0 without them.
    """

    seed: int
    num_test: int
    spearman_rho: float
    kendall_tau: float
    num_unseen: int
    spearman_rho_unseen: float
    top_pct: float
    top_overlap: float
    best_predicted_accuracy: float
    best_accuracy: float
    mae_pct: float
    fit_cpu_s: float
    predict_cpu_s: float
    proxy_cpu_s_per_arch: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (undefined correlations as ``null``)."""
        return {k: _nan_to_none(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictorRun:
        """Inverse of :meth:`to_dict`."""
        return cls(
            **{
                f.name: (int(data[f.name]) if f.type == "int" else _none_to_nan(data[f.name]))
                for f in fields(cls)
            }
        )


#: the fields of :class:`PredictorRun` that :meth:`PredictorReport.median` summarises.
_NUMERIC = tuple(f.name for f in fields(PredictorRun) if f.type == "float" and f.name != "top_pct")
_SETTINGS = (
    "space",
    "table",
    "model",
    "options",
    "train",
    "table_rows",
    "test_sample",
    "proxy_features",
    "data",
    "batch_size",
    "proxy_seed",
    "canonical",
)


@dataclass(frozen=True)
class PredictorReport:
    """Result of :func:`evaluate_accuracy_predictor`: the settings, one :class:`PredictorRun` per seed.

    Attributes:
        space / table / model / options: what was evaluated (``options``: the predictor's settings).
        train: training rows per run.
        table_rows: rows in the table.
        test_sample: test rows per run, or None for every row not used for training.
        proxy_features: proxies whose scores were extra features (empty: genome only).
        data / batch_size / proxy_seed: the minibatch and initial-weight seed of the proxy scores.
        canonical: genomes encoded (and networks scored) in canonical form.
        runs: one per seed.
        predictor: the first run's fitted predictor (not part of :meth:`to_dict`).
    """

    space: str
    table: str
    model: str
    options: dict[str, Any]
    train: int
    table_rows: int
    test_sample: int | None
    proxy_features: tuple[str, ...]
    data: str | None
    batch_size: int
    proxy_seed: int
    canonical: bool
    runs: tuple[PredictorRun, ...]
    predictor: AccuracyPredictor | None = None

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seed of each run."""
        return tuple(r.seed for r in self.runs)

    def median(self, name: str) -> float:
        """Median over the runs of the :class:`PredictorRun` field ``name`` (NaN runs left out)."""
        if name not in _NUMERIC and name not in ("num_test", "num_unseen"):
            raise InvalidInputError(f"no numeric run field {name!r} (fields: {', '.join(_NUMERIC)})")
        values = np.array([getattr(r, name) for r in self.runs], dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(np.median(values)) if len(values) else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict: settings, runs and the median of each figure over the runs."""
        d: dict[str, Any] = {k: getattr(self, k) for k in _SETTINGS}
        d["proxy_features"] = list(self.proxy_features)
        d["seeds"] = list(self.seeds)
        d["runs"] = [r.to_dict() for r in self.runs]
        d["median"] = {k: _nan_to_none(self.median(k)) for k in _NUMERIC}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictorReport:
        """Inverse of :meth:`to_dict` (without the fitted predictor)."""
        settings = {k: data[k] for k in _SETTINGS}
        settings["proxy_features"] = tuple(settings["proxy_features"])
        settings["options"] = dict(settings["options"])
        return cls(**settings, runs=tuple(PredictorRun.from_dict(r) for r in data["runs"]))


def _check_int(name: str, value: Any, low: int, high: int | None = None, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidInputError(f"{name}={value} is out of range; give {bound}{hint}")
    return int(value)


def _parse_proxies(names: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = tuple(str(n) for n in names)
    for n in out:
        PROXIES.get(n)  # an unknown name raises with the known ones and close matches
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise InvalidInputError(f"proxy feature {', '.join(dup)} listed twice")
    return out


def _make_predictor(
    name: str, space: SearchSpace, extra: tuple[str, ...], canonical: bool, seed: int, options: dict[str, Any]
) -> AccuracyPredictor:
    import inspect

    klass = PREDICTORS.get(name)
    accepted = [
        p.name
        for p in inspect.signature(klass.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"predictor {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(accepted) or 'none'}"
        )
    try:
        return klass(space=space, extra_features=extra, canonical=canonical, seed=seed, **options)
    except TypeError as exc:  # e.g. a string where a number belongs
        raise InvalidInputError(f"predictor {name!r} options {options}: {exc}") from None


def _top_overlap(pred: np.ndarray, truth: np.ndarray, top_pct: float) -> float:
    k = max(1, int(round(top_pct / 100.0 * len(truth))))
    # Stable sorts: ties (rows of one canonical cell) are broken by the seeded row order.
    true_top = set(np.argsort(-truth, kind="stable")[:k].tolist())
    pred_top = np.argsort(-pred, kind="stable")[:k].tolist()
    return len(true_top.intersection(pred_top)) / k


def _one_run(
    space: SearchSpace,
    table: AccuracyTable,
    model: str,
    options: dict[str, Any],
    train: int,
    test_sample: int | None,
    seed: int,
    names: tuple[str, ...],
    batch: Any,
    proxy_seed: int,
    canonical: bool,
    top_pct: float,
    cache_dir: str | Path | None,
    progress: Callable[[int], None] | None,
) -> tuple[PredictorRun, AccuracyPredictor]:
    from slimforge.estimators._scoring import score_architectures

    order = np.random.default_rng(seed).permutation(len(table))
    train_rows = order[:train]
    test_rows = order[train:] if test_sample is None else order[train : train + test_sample]
    genomes = [table.genomes[i] for i in np.concatenate([train_rows, test_rows])]
    accuracy = np.asarray(table.accuracy, dtype=np.float64)
    truth = accuracy[test_rows]
    extra_train = extra_test = None
    proxy_cpu = 0.0
    if names:
        scores = score_architectures(
            space, genomes, batch, names, seed=proxy_seed, canonical=canonical, cache_dir=cache_dir,
            progress=progress,
        )
        extra = proxy_features(scores.scores, names)
        extra_train, extra_test = extra[:train], extra[train:]
        per_arch = np.sum([scores.cpu_s[n] for n in names], axis=0) + np.asarray(scores.build_cpu_s)
        proxy_cpu = float(np.mean(per_arch))
    predictor = _make_predictor(model, space, names, canonical, seed, options)
    start = time.process_time()
    predictor.fit(genomes[:train], accuracy[train_rows], extra=extra_train)
    fit_s = time.process_time() - start
    start = time.process_time()
    pred = predictor.predict(genomes[train:], extra=extra_test)
    predict_s = time.process_time() - start
    corr = correlate(model, pred, truth, "drop")
    seen = {space.canonical(g) for g in genomes[:train]}
    unseen = np.array([space.canonical(g) not in seen for g in genomes[train:]], dtype=bool)
    corr_unseen = correlate(model, pred[unseen], truth[unseen], "drop")
    run = PredictorRun(
        seed=seed,
        num_test=len(test_rows),
        spearman_rho=corr.spearman_rho,
        kendall_tau=corr.kendall_tau,
        num_unseen=int(unseen.sum()),
        spearman_rho_unseen=corr_unseen.spearman_rho,
        top_pct=float(top_pct),
        top_overlap=_top_overlap(pred, truth, top_pct),
        best_predicted_accuracy=float(truth[int(np.argmax(pred))]),
        best_accuracy=float(truth.max()),
        mae_pct=float(np.mean(np.abs(pred - truth))),
        fit_cpu_s=fit_s,
        predict_cpu_s=predict_s,
        proxy_cpu_s_per_arch=proxy_cpu,
    )
    return run, predictor


def evaluate_accuracy_predictor(
    space: str | SearchSpace,
    table: str | os.PathLike | AccuracyTable,
    predictor: str = "gbm",
    *,
    train: int = 50,
    seed: int = 0,
    repeats: int = 1,
    test_sample: int | None = None,
    proxy_features: Sequence[str] | str = (),
    data: str | None = None,
    batch_size: int = 16,
    proxy_seed: int = 0,
    canonical: bool = True,
    top_pct: float = 1.0,
    options: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> PredictorReport:
    """Fit an accuracy predictor on ``train`` seeded rows of a table; score it on the other rows.

    Args:
        space: the search space (or its registry name) of the table's architectures.
        table: a CSV with ``arch`` and ``accuracy`` columns, or a table already read.
        predictor: a registered predictor (``"gbm"``, ``"mlp"``, ``"gp"``).
        train: training rows, drawn with the seed (the 50 rows of a seed are the first 50 of its 200).
        seed: seed of the first run: it shuffles the table's rows and seeds the fit.
        repeats: runs with seeds ``seed .. seed + repeats - 1``.
        test_sample: score only this many of the other rows (the next ones in the seeded order);
            None scores every other row. Worth setting with proxy features, which cost CPU
            seconds per architecture.
        proxy_features: proxies whose scores of each network (on one minibatch of ``data``) are
            extra features, e.g. ``("meco", "jacob_cov", "num_params")``.
        data: data spec of that minibatch (``npz:../shared/data/cifar10_subset.npz``); only with
            ``proxy_features``.
        batch_size: images in the minibatch.
        proxy_seed: seeds the minibatch and the networks' initial weights; fixed across runs so
            that the scores (and a cache made by ``slimforge proxy --seed`` with the same batch) are reused.
        canonical: encode genomes, and build networks, in canonical form.
        top_pct: the share of test rows, in percent, that :attr:`PredictorRun.top_overlap` looks at.
        options: predictor settings (``{"n_estimators": 300}``).
        cache_dir: directory of the per-architecture proxy score cache.
        progress: called with the number of architectures scored so far in the current run.
    """
    space = get_space(space) if isinstance(space, str) else space
    klass = PREDICTORS.get(predictor)  # an unknown name raises with the known ones
    names = _parse_proxies(proxy_features)
    if names and data is None:
        raise InvalidInputError(
            f"proxy features {', '.join(names)} need a minibatch: give data, "
            "e.g. npz:../shared/data/cifar10_subset.npz"
        )
    if data is not None and not names:
        raise InvalidInputError("data is used only for proxy features; name them too (e.g. meco,jacob_cov)")
    seed = _check_int("seed", seed, 0)
    repeats = _check_int("repeats", repeats, 1)
    batch_size = _check_int("batch_size", batch_size, 2)
    proxy_seed = _check_int("proxy_seed", proxy_seed, 0)
    if not (isinstance(top_pct, (int, float)) and 0.0 < top_pct <= 100.0):
        raise InvalidInputError(f"top_pct={top_pct!r} must be a percentage in (0, 100]")
    truth_table = table if isinstance(table, AccuracyTable) else read_accuracy_table(table, space)
    n = len(truth_table)
    train = _check_int(
        "train",
        train,
        klass.min_train,
        n - 3,
        f" (predictor {predictor!r} needs {klass.min_train}; the table has {n} rows "
        "and 3 must remain to test on)",
    )
    if test_sample is not None:
        test_sample = _check_int(
            "test_sample", test_sample, 3, n - train, f" (the table has {n} rows, {train} train)"
        )
    opts = dict(options or {})
    # A throwaway fit on a few rows: bad options fail before any proxy scoring, and the first run's
    # fit_cpu_s does not include importing scikit-learn.
    few = list(range(klass.min_train))
    _make_predictor(predictor, space, names, canonical, seed, opts).fit(
        [truth_table.genomes[i] for i in few],
        [truth_table.accuracy[i] for i in few],
        extra=np.zeros((len(few), len(names))) if names else None,
    )
    batch = None
    if names:
        from slimforge.data import load_dataset, sample_batch

        splits = load_dataset(data, seed=proxy_seed)
        batch = sample_batch(splits.train, batch_size, seed=proxy_seed)
    results = [
        _one_run(
            space, truth_table, predictor, opts, train, test_sample, s, names, batch, proxy_seed,
            canonical, float(top_pct), cache_dir, progress,
        )
        for s in range(seed, seed + repeats)
    ]
    first = results[0][1]
    return PredictorReport(
        space=space.name,
        table=truth_table.path,
        model=predictor,
        options=dict(first.to_dict()["config"]),
        train=train,
        table_rows=n,
        test_sample=test_sample,
        proxy_features=names,
        data=None if data is None else str(data),
        batch_size=batch_size,
        proxy_seed=proxy_seed,
        canonical=bool(canonical),
        runs=tuple(run for run, _ in results),
        predictor=first,
    )
