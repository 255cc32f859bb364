"""The accuracy-predictor base: fit on (genome, accuracy) pairs, ``predict(genomes) -> array``, save as JSON.

Features are the one-hot encoding of each genome's canonical form (any space: one block of
``num_choices[i]`` columns per gene, see :func:`encode_genomes`), optionally followed by extra columns
the caller gives (zero-cost proxy scores, see :func:`proxy_features`), which are standardised.
Models regress the log error ``-log(100 - accuracy)``: errors spread multiplicatively, and on the raw
scale the few collapsed networks (10% accuracy on CIFAR-10) dominate a squared loss. A fitted predictor is plain arrays and numbers, written as
JSON with every float in full precision, so :meth:`AccuracyPredictor.load` gives back a predictor whose
predictions are identical. Nothing is pickled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.io import atomic_write_json, check_predictor_document, read_predictor_file
from slimforge.spaces import SearchSpace, get_space

__all__ = ["FORMAT", "AccuracyPredictor", "encode_genomes", "from_target", "proxy_features", "to_target"]

#: ``format`` tag of a saved predictor; :meth:`AccuracyPredictor.load` refuses other files.
FORMAT = "slimforge.accuracy_predictor"
_VERSION = 1


def encode_genomes(
    space: SearchSpace, genomes: Sequence[Sequence[int]], canonical: bool = True
) -> np.ndarray:
    """Genome features: one-hot (n, Σ num_choices), plus choice counts where every gene has the same choices.

    Genomes are canonicalised first when ``canonical``. When every gene offers the same choices (as
    NAS-Bench-201's six edges offer the same five operations), the number of genes taking each
    choice is appended: an operation count is what a network's size and depth follow, and a
    regressor trained on 50 architectures cannot learn it from the one-hot columns alone.
    """
    choices = list(space.num_choices)
    offsets = np.cumsum([0, *choices[:-1]])
    width = int(sum(choices))
    shared = len(set(choices)) == 1
    rows = []
    for g in genomes:
        g = np.asarray(space.canonical(g) if canonical else space.validate(g))
        row = np.zeros(width)
        row[offsets + g] = 1.0
        if shared:
            row = np.concatenate([row, np.bincount(g, minlength=choices[0]).astype(np.float64)])
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width + (choices[0] if shared else 0))


def proxy_features(scores: Mapping[str, Sequence[float] | np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Proxy scores as an (n, len(names)) feature matrix, each column as ``sign(x)·log1p(|x|)``.

    The log squashes heavy-tailed proxies (SynFlow spans dozens of orders of magnitude); NaN and
    ±inf are kept, and the predictor replaces them (see :class:`AccuracyPredictor`).
    """
    missing = [n for n in names if n not in scores]
    if missing:
        raise InvalidInputError(
            f"no scores for proxy feature(s) {', '.join(missing)} (have: {', '.join(scores)})"
        )
    cols = [np.asarray(scores[n], dtype=np.float64) for n in names]
    with np.errstate(invalid="ignore", over="ignore"):
        return (
            np.stack([np.sign(c) * np.log1p(np.abs(c)) for c in cols], axis=1) if cols else np.zeros((0, 0))
        )


_MIN_ERROR = 1e-3  # percent: keeps the log finite for a (hypothetical) 100% accurate network


def to_target(accuracy: np.ndarray) -> np.ndarray:
    """Accuracy (%) -> the regression target ``-log(100 - accuracy)`` (monotone increasing)."""
    return -np.log(np.maximum(100.0 - np.asarray(accuracy, dtype=np.float64), _MIN_ERROR))


def from_target(target: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_target`."""
    return 100.0 - np.exp(-np.asarray(target, dtype=np.float64))


class AccuracyPredictor(ABC):
    """Predicts an architecture's accuracy (%) from its genome and, optionally, proxy scores.

    :meth:`fit` and :meth:`predict` validate their input and call :meth:`_fit` / :meth:`_predict` on the
    feature matrix and the log-error target; subclasses return their fitted state as JSON-compatible values.

    Args:
        space: the search space of the genomes (its registry name is saved).
        extra_features: names of extra feature columns (e.g. ``("naswot", "synflow")``); :meth:`fit`
            and :meth:`predict` then need an ``extra`` matrix with these columns, in this order.
        canonical: encode canonical genomes (networks equal as functions share one encoding).
        seed: seeds every random choice of the fit.
    """

    #: registry name, written into saved files.
    name: ClassVar[str] = ""
    #: fewest training pairs :meth:`fit` accepts.
    min_train: ClassVar[int] = 5
    #: whether :meth:`predict_with_std` gives an uncertainty.
    has_std: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace | str = "nb201",
        extra_features: Sequence[str] = (),
        canonical: bool = True,
        seed: int = 0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative int, got {seed!r}")
        if isinstance(extra_features, str):
            raise InvalidInputError(
                f"extra_features must be a list of names, got the string {extra_features!r}"
            )
        self.space = get_space(space) if isinstance(space, str) else space
        self.extra_features = tuple(str(f) for f in extra_features)
        self.canonical = bool(canonical)
        self.seed = int(seed)
        self._state: dict[str, Any] | None = None
        self._scaling: dict[str, list[float]] | None = None
        self._fill: dict[str, list[float]] | None = None

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        """Fit on features ``x`` and log-error targets ``y``; return JSON-compatible state."""

    @abstractmethod
    def _predict(self, state: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean log-error target (and its standard deviation, or None) of features ``x``."""

    def _config(self) -> dict[str, Any]:
        """Constructor arguments of the subclass (besides the base ones), as JSON values."""
        return {}

    # ------------------------------------------------------------ features
    def _features(
        self, genomes: Sequence[Sequence[int]], extra: np.ndarray | None, fitting: bool
    ) -> np.ndarray:
        try:
            genomes = [self.space.validate(g) for g in genomes]
        except TypeError:
            raise InvalidInputError("genomes must be a sequence of genomes") from None
        x = encode_genomes(self.space, genomes, self.canonical)
        if self.extra_features:
            if extra is None:
                raise InvalidInputError(
                    f"predictor {self.name!r} was built with extra features {list(self.extra_features)}: pass "
                    "extra=proxy_features(scores, names) with one row per genome"
                )
            extra = (
                np.asarray(extra, dtype=np.float64).reshape(len(x), -1)
                if len(x)
                else np.zeros((0, len(self.extra_features)))
            )
            if extra.shape != (len(x), len(self.extra_features)):
                raise InvalidInputError(
                    f"extra features of shape {extra.shape}; expected ({len(x)}, {len(self.extra_features)}) "
                    f"for {list(self.extra_features)}"
                )
            if fitting:
                finite = np.where(np.isfinite(extra), extra, np.nan)
                if np.isnan(finite).all(0).any():
                    bad = [n for n, allnan in zip(self.extra_features, np.isnan(finite).all(0)) if allnan]
                    raise InvalidInputError(
                        f"extra feature(s) {bad} have no finite value in the training set"
                    )
                lo, hi = np.nanmin(finite, 0), np.nanmax(finite, 0)
                self._fill = {"low": lo.tolist(), "high": hi.tolist()}
            # A score of -inf/NaN (a proxy that saw a dead network) becomes the worst training value,
            # +inf the best: the predictor must still answer for every genome.
            fill = self._fill or {}
            lo, hi = np.asarray(fill["low"]), np.asarray(fill["high"])
            extra = np.where(np.isposinf(extra), hi, np.where(np.isfinite(extra), extra, lo))
            if fitting:
                mean, std = extra.mean(0), extra.std(0)
                std[std == 0] = 1.0
                self._scaling = {"mean": mean.tolist(), "std": std.tolist()}
            scaling = self._scaling or {}
            extra = (extra - np.asarray(scaling["mean"])) / np.asarray(scaling["std"])
            x = np.concatenate([x, extra], axis=1)
        elif extra is not None:
            raise InvalidInputError(
                f"predictor {self.name!r} takes no extra features; build it with extra_features=..."
            )
        return x

    # ------------------------------------------------------------- public API
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has given the predictor its parameters."""
        return self._state is not None

    def fit(
        self, genomes: Sequence[Sequence[int]], accuracy: Sequence[float], extra: np.ndarray | None = None
    ) -> AccuracyPredictor:
        """Fit on (genome, accuracy %) pairs; returns ``self``.

        Args:
            genomes: training architectures.
            accuracy: their accuracy in percent (finite).
            extra: (n, len(extra_features)) extra columns, when the predictor has extra features.
        """
        y = np.asarray(accuracy, dtype=np.float64).reshape(-1)
        if len(y) != len(genomes):
            raise InvalidInputError(
                f"got {len(genomes)} genomes but {len(y)} accuracies; give one per genome"
            )
        if len(y) < self.min_train:
            raise InvalidInputError(
                f"predictor {self.name!r} needs at least {self.min_train} training architectures, got {len(y)}"
            )
        if not np.isfinite(y).all():
            raise InvalidInputError("training accuracies must be finite numbers")
        if np.any(y > 100.0) or np.any(y < 0.0):
            raise InvalidInputError(f"accuracies must be percentages in [0, 100], got {y.min()}..{y.max()}")
        x = self._features(genomes, extra, fitting=True)
        self._state = self._fit(x, to_target(y), np.random.default_rng(self.seed))
        return self

    def _check_fitted(self) -> dict[str, Any]:
        if self._state is None:
            raise InvalidInputError(f"predictor {self.name!r} is not fitted; call fit() or load() first")
        return self._state

    def predict(self, genomes: Sequence[Sequence[int]], extra: np.ndarray | None = None) -> np.ndarray:
        """Predicted accuracy (%) of each genome, shape (n,)."""
        state = self._check_fitted()
        if len(genomes) == 0:
            return np.zeros(0)
        z = self._predict(state, self._features(genomes, extra, fitting=False))[0]
        return from_target(np.asarray(z, dtype=np.float64))

    def to_dict(self) -> dict[str, Any]:
        """The fitted predictor as a JSON-compatible dict."""
        state = self._check_fitted()
        return {
            "format": FORMAT,
            "version": _VERSION,
            "model": self.name,
            "space": self.space.name,
            "extra_features": list(self.extra_features),
            "canonical": self.canonical,
            "seed": self.seed,
            "config": self._config(),
            "scaling": self._scaling,
            "fill": self._fill,
            "state": state,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "predictor") -> AccuracyPredictor:
        """Rebuild a fitted predictor from :meth:`to_dict` output (any registered model)."""
        from slimforge.estimators.predictors import PREDICTORS

        check_predictor_document(data, FORMAT, _VERSION, source, "accuracy predictor")
        try:
            klass = PREDICTORS.get(str(data["model"]))
            predictor = klass(
                space=str(data["space"]),
                extra_features=tuple(data["extra_features"]),
                canonical=bool(data["canonical"]),
                seed=int(data["seed"]),
                **dict(data["config"]),
            )
            if data.get("scaling") is not None:
                predictor._scaling = {k: list(v) for k, v in dict(data["scaling"]).items()}
            if data.get("fill") is not None:
                predictor._fill = dict(data["fill"])
            predictor._state = dict(data["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: malformed predictor file ({exc})") from None
        return predictor

    def save(self, path: str | Path) -> None:
        """Write the fitted predictor as JSON (floats in full precision, so loading is exact).

        The file is replaced atomically: a crash or a full disk leaves the previous file whole.
        """
        atomic_write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | Path) -> AccuracyPredictor:
        """Read a predictor written by :meth:`save`."""
        data, source = read_predictor_file(path)
        return cls.from_dict(data, source=source)

    def __repr__(self) -> str:
        extra = f", extra_features={list(self.extra_features)}" if self.extra_features else ""
        return f"{type(self).__name__}(space={self.space.name!r}{extra}, {'fitted' if self.is_fitted else 'not fitted'})"
