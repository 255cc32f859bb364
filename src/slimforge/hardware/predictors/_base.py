"""The latency-predictor base: fit on (genome, measured latency) pairs, predict, save as JSON."""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.hardware.predictors._features import NB201Features
from slimforge.io import atomic_write_json, check_predictor_document, read_predictor_file

__all__ = ["FORMAT", "FeaturePredictor", "LatencyPredictor", "as_genomes"]

#: ``format`` tag of a saved predictor; :meth:`LatencyPredictor.load` refuses any other file.
FORMAT = "slimforge.latency_predictor"
_VERSION = 1
_NUM_GENES = 6
_NUM_OPS = 5


def as_genomes(genomes: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    """NB201 genomes as an int64 array of shape (n, 6); anything else raises InvalidInputError."""
    try:
        arr = np.asarray(genomes)
    except (TypeError, ValueError):
        raise InvalidInputError("genomes must be a sequence of 6-gene NB201 genomes") from None
    if arr.size == 0:
        return np.zeros((0, _NUM_GENES), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != _NUM_GENES or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(
            f"genomes must be an (n, {_NUM_GENES}) array of ints (NB201 genomes), got shape {arr.shape} "
            f"of {arr.dtype}"
        )
    if arr.min() < 0 or arr.max() >= _NUM_OPS:
        raise InvalidInputError(
            f"NB201 genes must lie in [0, {_NUM_OPS - 1}], got values {arr.min()}..{arr.max()}"
        )
    return arr.astype(np.int64)


class LatencyPredictor(ABC):
    """Predicts a device's latency (ms) of NAS-Bench-201 networks from a few measured ones.

    :meth:`fit` and :meth:`predict` validate their input and call :meth:`_fit` / :meth:`_predict`;
    a fitted predictor is plain arrays (:meth:`_state`), saved as JSON by :meth:`save` and read
    back by :meth:`load` with identical predictions. Nothing is pickled.

    Args:
        seed: seeds every random choice of the fit (cross-validation folds, tree subsampling).
    """

    #: registry name, written into saved files.
    name: ClassVar[str] = ""
    #: the fewest training pairs :meth:`fit` accepts.
    min_train: ClassVar[int] = 3

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidInputError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self._fitted: dict[str, Any] | None = None
        #: the runtime the training latencies were measured with, when saved with one (None: unrecorded).
        self.runtime: str | None = None

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _fit(self, genomes: np.ndarray, latency_ms: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        """Fit on validated arrays; return the fitted state (JSON-compatible lists and numbers)."""

    @abstractmethod
    def _predict(self, state: dict[str, Any], genomes: np.ndarray) -> np.ndarray:
        """Predict latency (ms) of validated genomes from the fitted ``state``."""

    def _config(self) -> dict[str, Any]:
        """Constructor arguments other than ``seed``, as JSON values."""
        return {}

    @classmethod
    def _from_config(cls, config: dict[str, Any], seed: int) -> LatencyPredictor:
        return cls(seed=seed, **config)

    # ------------------------------------------------------------- public API
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has given the predictor its parameters."""
        return self._fitted is not None

    def fit(
        self, genomes: Sequence[Sequence[int]] | np.ndarray, latency_ms: Sequence[float]
    ) -> LatencyPredictor:
        """Fit on measured pairs; returns ``self``.

        Args:
            genomes: (n, 6) NB201 genomes of the measured networks.
            latency_ms: their measured latency in milliseconds (positive, finite).
        """
        g = as_genomes(genomes)
        y = np.asarray(latency_ms, dtype=np.float64).reshape(-1)
        if len(y) != len(g):
            raise InvalidInputError(
                f"got {len(g)} genomes but {len(y)} latencies; give one latency per genome"
            )
        if len(g) < self.min_train:
            raise InvalidInputError(
                f"predictor {self.name!r} needs at least {self.min_train} measured networks, got {len(g)}"
            )
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InvalidInputError("latencies must be positive finite milliseconds")
        self._fitted = self._fit(g, y, np.random.default_rng(self.seed))
        return self

    def predict(self, genomes: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
        """Predicted latency (ms) of each genome, shape (n,)."""
        if self._fitted is None:
            raise InvalidInputError(f"predictor {self.name!r} is not fitted; call fit() or load() first")
        g = as_genomes(genomes)
        if len(g) == 0:
            return np.zeros(0)
        return np.asarray(self._predict(self._fitted, g), dtype=np.float64)

    def to_dict(self, runtime: str | None = None) -> dict[str, Any]:
        """The fitted predictor as a JSON-compatible dict; ``runtime`` names the runtime its latencies
        were measured with (``onnxruntime``, ``litert``), checked when it is loaded."""
        if self._fitted is None:
            raise InvalidInputError(f"predictor {self.name!r} is not fitted; there is nothing to save")
        out = {
            "format": FORMAT,
            "version": _VERSION,
            "model": self.name,
            "seed": self.seed,
            "config": self._config(),
            "state": self._fitted,
        }
        runtime = runtime if runtime is not None else self.runtime
        if runtime is not None:
            out["runtime"] = str(runtime)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "predictor") -> LatencyPredictor:
        """Rebuild a fitted predictor from :meth:`to_dict` output (any registered model)."""
        from slimforge.hardware.predictors import PREDICTORS

        check_predictor_document(data, FORMAT, _VERSION, source, "latency predictor", mapping=dict)
        try:
            klass = PREDICTORS.get(str(data["model"]))
            predictor = klass._from_config(dict(data["config"]), int(data["seed"]))
            state = dict(data["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: malformed predictor file ({exc})") from None
        predictor._fitted = state
        predictor.runtime = data.get("runtime")
        return predictor

    def save(self, path: str | Path, runtime: str | None = None) -> None:
        """Write the fitted predictor as JSON (floats written with full precision).

        ``runtime`` records which runtime the training latencies come from (e.g. ``litert`` for
        the Raspberry Pi 5 LiteRT table); :meth:`load` with a ``runtime`` refuses another.
        The file is replaced atomically: a crash or a full disk leaves the previous file whole.
        """
        atomic_write_json(path, self.to_dict(runtime), indent=None)

    @classmethod
    def load(cls, path: str | Path, runtime: str | None = None) -> LatencyPredictor:
        """Read a predictor written by :meth:`save`; with ``runtime``, only one fitted on that runtime.

        Raises:
            ModelFileError: an unreadable file, or (one line) a predictor of another runtime or of
                an unrecorded one when ``runtime`` is given.
        """
        predictor = cls._load(path)
        if runtime is not None and predictor.runtime != runtime:
            fitted = (
                f"latencies of {predictor.runtime}"
                if predictor.runtime
                else "latencies of an unrecorded runtime"
            )
            raise ModelFileError(
                f"predictor file {path} was fitted on {fitted}, not {runtime}; fit one on {runtime} "
                f"measurements and save it with runtime={runtime!r}"
            )
        return predictor

    @classmethod
    def _load(cls, path: str | Path) -> LatencyPredictor:
        data, source = read_predictor_file(path)
        return cls.from_dict(data, source=source)

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}(seed={self.seed}, {state})"


def finite_list(values: np.ndarray) -> list[float]:
    """A float array as a JSON list; NaN or infinity raises (JSON has no such numbers)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("a fitted parameter is not finite; the training latencies are degenerate")
    return [float(v) for v in values.reshape(-1)]


def check_finite(value: float) -> float:
    """A float that JSON can hold."""
    if not math.isfinite(value):
        raise InvalidInputError("a fitted parameter is not finite; the training latencies are degenerate")
    return float(value)


class FeaturePredictor(LatencyPredictor):
    """A predictor that reads genomes through :class:`NB201Features` (its settings are saved with it).

    Args:
        seed: seeds every random choice of the fit.
        features: the featuriser's settings (:class:`NB201Features` fields).
    """

    def __init__(self, seed: int = 0, features: dict[str, int] | None = None) -> None:
        super().__init__(seed)
        self.features = NB201Features(**(features or {}))

    def _config(self) -> dict[str, Any]:
        return {"features": dataclasses.asdict(self.features)}
