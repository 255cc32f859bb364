"""Settings of ``slimforge bench spaces``: which spaces and hand-designed networks, at which scale.

The co-design study's device experiment (REFERENCE.md §1) compares ShuffleSpace (SPOS's ShuffleNetV2
space), ShuffleSpace+I (with the identity, so variable depth) and MobileSpace+I (a MobileNetV2
skeleton with MBConv k{3,5,7} x e{3,6} + identity) with ShuffleNetV2, MobileNetV2 and EfficientNet.
``small`` shrinks every network to what a 2-core CPU trains in minutes; ``study`` keeps the spaces'
20 searchable layers and the models' width 1.0. Every network is a CIFAR network (32x32 input).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from slimforge.bench._config import BenchConfig, names
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.registry import Registry

__all__ = [
    "BENCH_SPACES",
    "SCALES",
    "SPACES_PRESETS",
    "BenchSpace",
    "SpacesConfig",
    "ZooEntry",
    "cifar_zoo_model",
    "parse_zoo",
]


@dataclass(frozen=True)
class BenchSpace:
    """A space of the device experiment: its label in the study, registry name and options."""

    label: str
    space: str
    options: dict[str, Any]


#: the device experiment's spaces, by the name ``--spaces`` takes.
BENCH_SPACES: Registry[BenchSpace] = Registry("benchmark space")
BENCH_SPACES.register("shufflenet", BenchSpace("ShuffleSpace", "shufflenet", {"identity": False}))
BENCH_SPACES.register("shufflenet-id", BenchSpace("ShuffleSpace+I", "shufflenet", {"identity": True}))
BENCH_SPACES.register("mbv2-id", BenchSpace("MobileSpace+I", "mbv2", {"identity": True}))
BENCH_SPACES.register("mbv2", BenchSpace("MobileSpace", "mbv2", {"identity": False}))

#: per scale: each space's size options, and the hand-designed networks with their widths.
SCALES: dict[str, dict[str, Any]] = {
    "small": {
        "shufflenet": {"width": 0.5, "resolution": 32, "stage_depths": [2, 2, 4, 2]},
        "mbv2": {"width": 0.35, "resolution": 32, "stage_depths": [2, 2, 2, 2, 2, 1]},
        "zoo": ("shufflenet_v2:0.5", "mobilenet_v2:0.35", "efficientnet_b0:0.35"),
    },
    "study": {
        "shufflenet": {"width": 1.0, "resolution": 32, "stage_depths": [4, 4, 8, 4]},
        "mbv2": {"width": 1.0, "resolution": 32, "stage_depths": [4, 4, 4, 4, 3, 1]},
        "zoo": ("shufflenet_v2:1.0", "mobilenet_v2:1.0", "efficientnet_b0:1.0"),
    },
}

#: Named settings of the whole experiment. ``study``: the device experiment as the study ran it
#: (REFERENCE.md §1): 20-layer spaces at width 1.0, batch 96, SGD lr 0.025 to 0 with the Lambda
#: (linear) schedule of SPOS's code, weight decay 3e-4, Nesterov momentum 0.9, supernets 900 epochs
#: and the networks trained standalone (retrained fronts, zoo) 300.
#: ``small``: what a 2-core CPU runs in an hour (the defaults of :class:`SpacesConfig`).
SPACES_PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "scale": "small",
        "epochs": 20,
        "supernet_epochs": None,
        "batch_size": 96,
        "lr": 0.025,
        "weight_decay": 3e-4,
        "lr_schedule": "cosine",
    },
    "study": {
        "scale": "study",
        "epochs": 300,
        "supernet_epochs": 900,
        "batch_size": 96,
        "lr": 0.025,
        "weight_decay": 3e-4,
        "lr_schedule": "linear",
    },
}

# CIFAR adaptation of the zoo's ImageNet networks: the first N stride-2 convolutions (in module
# order) stop striding, matching the total stride of the space each is compared with — ShuffleNetV2
# keeps its max-pool and loses the stem stride (16, as ShuffleSpace); MobileNetV2 and EfficientNet
# also lose the stride of their first 24-channel stage (8, as MobileSpace).
_UNSTRIDED = {"shufflenet_v2": 1, "mobilenet_v2": 2, "efficientnet_b0": 2}


@dataclass(frozen=True)
class ZooEntry:
    """A hand-designed network of the comparison: zoo name and width."""

    name: str
    width: float

    @property
    def key(self) -> str:
        """Directory-safe identifier, e.g. ``mobilenet_v2-w0.35``."""
        return f"{self.name}-w{self.width:g}"

    @property
    def label(self) -> str:
        """Display name, e.g. ``mobilenet_v2 0.35x``."""
        return f"{self.name} {self.width:g}x"


def parse_zoo(text: str) -> ZooEntry:
    """``"mobilenet_v2:0.35"`` (or ``"mobilenet_v2"`` for width 1.0) as a :class:`ZooEntry`."""
    from slimforge.zoo import MODELS

    name, sep, width = str(text).strip().partition(":")
    MODELS.get(name)  # an unknown model raises with close matches
    try:
        value = float(width) if sep else 1.0
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(
            f"zoo entry {text!r}: write NAME:WIDTH with a positive width, e.g. mobilenet_v2:0.35"
        )
    return ZooEntry(name, value)


def cifar_zoo_model(entry: ZooEntry, num_classes: int, seed: int) -> nn.Module:
    """The zoo network with seeded initial weights and the CIFAR adaptation (see ``_UNSTRIDED``)."""
    from slimforge.zoo import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(entry.name, num_classes=num_classes, width=entry.width)
    strided = [m for m in model.modules() if isinstance(m, nn.Conv2d) and tuple(m.stride) == (2, 2)]
    for conv in strided[: _UNSTRIDED.get(entry.name, 1)]:
        conv.stride = (1, 1)
    return model


def _positive(name: str, value: Any, *, integer: bool = True, zero: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        kind = "an integer" if integer else "a number"
        bound = ">= 0" if zero else "> 0"
        raise InvalidInputError(f"bench spaces: {name} must be {kind} {bound}, got {value!r}")


#: the search's default GA: the study's offspring scheme scaled to a budget of about a hundred.
DEFAULT_SEARCH_SETTINGS: dict[str, Any] = {
    "pop_size": 20,
    "n_parents": 5,
    "n_crossover": 8,
    "n_mutation": 10,
    "n_random": 2,
    "iterations": None,
}


@dataclass(frozen=True)
class SpacesConfig(BenchConfig):
    """One run of the device experiment on this machine (see :func:`run_spaces_bench`).

    Attributes:
        data: data spec (CIFAR-sized images): supernets and zoo networks train on its training part
            less the validation part; the search scores on the validation part; the reported error is
            on the test part.
        spaces: names from :data:`BENCH_SPACES`.
        zoo: hand-designed networks as ``NAME:WIDTH``; empty takes the scale's.
        scale: ``small`` or ``study`` (:data:`SCALES`).
        preset: the named settings the others were taken from (:data:`SPACES_PRESETS`; recorded).
        epochs: epochs of every network trained standalone: the zoo networks and the retrained
            front networks (the same budget; the study: 300).
        supernet_epochs: epochs of every supernet; None trains them for ``epochs`` too (the study: 900).
        batch_size, lr, weight_decay: SGD (Nesterov, momentum 0.9) for all of them; the study's
            device experiment used 96, 0.025 and 3e-4.
        lr_schedule: how every learning rate (supernets and standalone networks) falls to 0, per
            step: ``cosine`` or ``linear`` (SPOS's LambdaLR, which the study used).
        val_fraction: share of the training images held out for the search's accuracy estimate.
        algorithm, budget, settings: the search per space (distinct evaluations; algorithm settings).
        bn_images: training images for batch-norm re-calibration of inherited weights.
        calibration_images: training images calibrating each INT8 quantization.
        search_time_cap_s: seconds of timed runs per network during the search.
        final_time_cap_s: seconds of timed runs per network in the final, interleaved measurement.
        final_max: at most this many front networks per space get the final INT8 evaluation,
            spread evenly along the front's latency.
        retrain: train each of those networks standalone from fresh weights with the zoo networks'
            budget before deploying it (the study retrains searched networks); False deploys the
            supernet's weights, batch norm re-calibrated (faster, but not comparable with the zoo).
        threads: ONNX Runtime intra-op threads for every latency.
        train_device: ``auto``, ``cpu`` or ``cuda[:N]`` for the supernets (zoo networks train on the CPU).
        seed: seeds everything.
        png: write the figure.
    """

    bench: ClassVar[str] = "bench spaces"
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = SPACES_PRESETS

    data: str = "npz:../shared/data/cifar10_subset.npz"
    spaces: tuple[str, ...] = ("shufflenet", "shufflenet-id", "mbv2-id")
    zoo: tuple[str, ...] = ()
    scale: str = "small"
    preset: str = "small"
    epochs: int = 20
    supernet_epochs: int | None = None
    batch_size: int = 96
    lr: float = 0.025
    weight_decay: float = 3e-4
    lr_schedule: str = "cosine"
    val_fraction: float = 0.1
    algorithm: str = "nsga2"
    budget: int = 120
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SEARCH_SETTINGS))
    bn_images: int = 256
    calibration_images: int = 64
    search_time_cap_s: float = 2.0
    final_time_cap_s: float = 10.0
    final_max: int = 10
    retrain: bool = True
    threads: int = 1
    train_device: str = "auto"
    seed: int = 0
    png: bool = True

    def __post_init__(self) -> None:
        from slimforge.search import ALGORITHMS

        for name in ("spaces", "zoo"):
            object.__setattr__(self, name, names(getattr(self, name)))
        self._check_preset()
        if self.supernet_epochs is not None:
            _positive("supernet_epochs", self.supernet_epochs)
        from slimforge.supernet.config import LR_SCHEDULES

        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidInputError(
                f"bench spaces: lr_schedule {self.lr_schedule!r} must be one of {', '.join(LR_SCHEDULES)}"
            )
        if self.scale not in SCALES:
            raise UnknownNameError(f"unknown scale {self.scale!r}; use one of {', '.join(SCALES)}")
        if not self.spaces:
            raise InvalidInputError("bench spaces needs at least one space, e.g. --spaces mbv2-id")
        for name in self.spaces:
            BENCH_SPACES.get(name)
        if len(set(self.spaces)) != len(self.spaces):
            raise InvalidInputError(f"a space is listed twice in {','.join(self.spaces)}")
        if not self.zoo:
            object.__setattr__(self, "zoo", tuple(SCALES[self.scale]["zoo"]))
        entries = [parse_zoo(z) for z in self.zoo]
        if len({e.key for e in entries}) != len(entries):
            raise InvalidInputError(f"a zoo network is listed twice in {','.join(self.zoo)}")
        ALGORITHMS.get(self.algorithm)
        if not isinstance(self.settings, dict):
            raise InvalidInputError(f"bench spaces: settings must be a dict, got {self.settings!r}")
        object.__setattr__(self, "settings", dict(self.settings))
        for name in ("epochs", "batch_size", "budget", "final_max", "threads"):
            _positive(name, getattr(self, name))
        for name in ("bn_images", "seed"):
            _positive(name, getattr(self, name), zero=True)
        _positive("calibration_images", self.calibration_images)
        for name in ("lr", "search_time_cap_s", "final_time_cap_s"):
            _positive(name, getattr(self, name), integer=False)
        _positive("weight_decay", self.weight_decay, integer=False, zero=True)
        for name, value in (("retrain", self.retrain), ("png", self.png)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"bench spaces: {name} must be true or false, got {value!r}")
        self._check_val_fraction()

    @classmethod
    def from_preset(cls, preset: str = "small", **overrides: Any) -> SpacesConfig:
        """The ``preset``'s settings with ``overrides`` (None values are ignored)."""
        return cls._from_preset(preset, overrides)

    @property
    def supernet_train_epochs(self) -> int:
        """Epochs of each supernet (``supernet_epochs``, else ``epochs``)."""
        return self.epochs if self.supernet_epochs is None else self.supernet_epochs

    def zoo_entries(self) -> list[ZooEntry]:
        """The hand-designed networks, parsed."""
        return [parse_zoo(z) for z in self.zoo]

    def space_kwargs(self, name: str) -> dict[str, Any]:
        """Constructor options of benchmark space ``name`` at this scale."""
        entry = BENCH_SPACES.get(name)
        return {**SCALES[self.scale][entry.space], **entry.options}
