"""Settings of ``slimforge bench codesign``: the co-design study's protocol, at its scale or a CPU's."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from slimforge.bench._config import BenchConfig, names
from slimforge.errors import InvalidInputError, UnknownNameError, close_matches

__all__ = ["CODESIGN_PRESETS", "CodesignConfig"]

_NB201 = "../shared/data/nb201"

#: Named scales. ``study``: REFERENCE.md Tables 5-1 and 5-2 (200 epochs, the benchmark's 16-channel,
#: 5-cells-per-stage network, NSGA-II 20 generations of 50, WSEA/CEA calibrated on 1,000 random
#: architectures, every validation image, DARTS second order as the study's DARTS-v2 baseline).
#: ``cpu``: the same protocol scaled to a 2-core CPU (DARTS first order, as it always ran here).
#: The optimisers (SGD 0.025 cosine to 0, Nesterov 0.9, wd 5e-4; Adam 3e-4, wd 1e-3) are
#: TrainConfig's defaults, which are Table 5-1's; runs/notes/issue22-presets.md lists each setting.
CODESIGN_PRESETS: dict[str, dict[str, Any]] = {
    "study": {
        "epochs": 200,
        "channels": 16,
        "cells_per_stage": 5,
        "pop_size": 50,
        "iterations": 20,
        "num_calibration": 1000,
        "eval_images": None,
        "bn_images": 256,
        "method_options": {"darts": {"order": 2}},
    },
    "cpu": {
        "epochs": 25,
        "channels": 16,
        "cells_per_stage": 2,
        "pop_size": 50,
        "iterations": 10,
        "num_calibration": 200,
        "eval_images": 250,
        "bn_images": 128,
        "method_options": {},
    },
}


def _int(name: str, value: Any, lowest: int = 1, *, none: bool = False) -> None:
    if none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"bench codesign: {name} must be an integer >= {lowest}, got {value!r}")


@dataclass(frozen=True)
class CodesignConfig(BenchConfig):
    """One reproduction of the co-design study on NAS-Bench-201 (see :func:`run_codesign`).

    Attributes:
        data: data spec the supernets train on (``npz:FILE``, ``cifar10:DIR``, ...).
        accuracy_table: NAS-Bench-201 accuracy table, the *true* accuracy of every reported architecture.
        device_tables: device tables (``index,arch,latency_ms[,energy_mj]``), one search per table.
        methods: supernet training methods, one supernet each (``darts``, ``rsps``, ``gdas``, ``spos``).
        search_on: the methods whose supernets are searched (the study searches GDAS's).
        algorithms: search algorithms run on each searched supernet and device (``wsea``, ``cea``, ``nsga2``).
        preset: the scale the other settings were taken from (recorded with the results).
        epochs: supernet training epochs (the study: 200).
        channels, cells_per_stage: the supernet's network (the benchmark's is 16 and 5).
        pop_size, iterations: the GAs' population and generations (study Table 5-2: 50 and 20).
        num_calibration: random architectures WSEA and CEA calibrate on (the study: 1,000).
        eval_images: validation images per proxy evaluation (a fixed seeded subset); None (or 0) for all.
        bn_images: training images for batch-norm re-calibration before each proxy evaluation.
        method_options: each method's supernet options, by method (``{"darts": {"order": 2}}``).
        batch_size: supernet training batch (the study: 64).
        val_fraction: share of the training images held out for architecture steps and the proxy
            (the study splits CIFAR-10's training set 25k/25k: 0.5).
        train_device: ``auto`` (a GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seeds supernets, data split, searches and proxy subsets.
        png: write the proxy-versus-true figures.
    """

    bench: ClassVar[str] = "bench codesign"
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = CODESIGN_PRESETS

    data: str = "npz:../shared/data/cifar10_subset.npz"
    accuracy_table: str = f"{_NB201}/accuracy_cifar10.csv"
    device_tables: tuple[str, ...] = (
        f"{_NB201}/device_pi5_onnxruntime.csv",
        f"{_NB201}/device_pi5_litert.csv",
    )
    methods: tuple[str, ...] = ("darts", "rsps", "gdas", "spos")
    search_on: tuple[str, ...] = ("gdas", "spos")
    algorithms: tuple[str, ...] = ("wsea", "cea", "nsga2")
    preset: str = "cpu"
    epochs: int = CODESIGN_PRESETS["cpu"]["epochs"]
    channels: int = CODESIGN_PRESETS["cpu"]["channels"]
    cells_per_stage: int = CODESIGN_PRESETS["cpu"]["cells_per_stage"]
    pop_size: int = CODESIGN_PRESETS["cpu"]["pop_size"]
    iterations: int = CODESIGN_PRESETS["cpu"]["iterations"]
    num_calibration: int = CODESIGN_PRESETS["cpu"]["num_calibration"]
    eval_images: int | None = CODESIGN_PRESETS["cpu"]["eval_images"]
    bn_images: int = CODESIGN_PRESETS["cpu"]["bn_images"]
    method_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    batch_size: int = 64
    val_fraction: float = 0.5
    train_device: str = "auto"
    seed: int = 0
    png: bool = True

    def __post_init__(self) -> None:
        from slimforge.search import ALGORITHMS
        from slimforge.supernet import TRAINERS

        for name in ("device_tables", "methods", "search_on", "algorithms"):
            object.__setattr__(self, name, names(getattr(self, name)))
        self._check_preset()
        if not self.device_tables:
            raise InvalidInputError("bench codesign needs at least one device table (--device-table FILE)")
        if not self.methods:
            raise InvalidInputError("bench codesign needs at least one supernet method, e.g. --methods gdas")
        for method in self.methods:
            if method not in TRAINERS:
                hint = close_matches(method, TRAINERS.list())
                did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise UnknownNameError(
                    f"unknown supernet method {method!r}{did_you_mean} (known: {', '.join(TRAINERS.list())})"
                )
        for method in self.search_on:
            if method not in self.methods:
                raise InvalidInputError(
                    f"--search-on {method!r} is not among the trained --methods "
                    f"({', '.join(self.methods)}); add it there"
                )
        for name in self.algorithms:
            ALGORITHMS.get(name)  # an unknown name raises UnknownNameError with suggestions
        if self.search_on and not self.algorithms:
            raise InvalidInputError("--search-on needs at least one --algorithms entry, e.g. nsga2")
        for name in ("epochs", "channels", "cells_per_stage", "pop_size", "iterations", "batch_size"):
            _int(name, getattr(self, name))
        _int("num_calibration", self.num_calibration, 2)
        if self.eval_images == 0 and not isinstance(self.eval_images, bool):
            object.__setattr__(self, "eval_images", None)
        _int("eval_images", self.eval_images, none=True)
        _int("bn_images", self.bn_images, 0)
        if not isinstance(self.method_options, dict) or not all(
            isinstance(v, dict) for v in self.method_options.values()
        ):
            raise InvalidInputError(
                f"bench codesign: method_options must map a method to its options, got {self.method_options!r}"
            )
        for method, options in self.method_options.items():
            if method in self.methods:
                TRAINERS.get(method).resolve_options(options)  # an unknown option fails before training
        object.__setattr__(self, "method_options", {m: dict(o) for m, o in self.method_options.items()})
        _int("seed", self.seed, 0)
        self._check_val_fraction()

    @classmethod
    def from_preset(cls, preset: str = "cpu", **overrides: Any) -> CodesignConfig:
        """The ``preset``'s settings with ``overrides`` (None values are ignored)."""
        return cls._from_preset(preset, overrides)
