"""The config of one ``slimforge run``: YAML in, validated frozen dataclasses out, defaults filled in.

Every section is a frozen dataclass; :func:`load_config` checks each key against it and names
the key, the bad value and what is allowed. The validated config (with every default) is echoed
into the run directory as ``config.yaml``, so a run says exactly how it was made.

>>> config = load_config("design.yaml")                     # doctest: +SKIP
>>> config = RunConfig.from_dict({"data": "digits", "search": {"budget": 100}})
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimforge.runs._config_schema import ConfigError, build_dataclass, explain_dataclass, plain

__all__ = [
    "AccuracyConfig",
    "CalibrationConfig",
    "CompressConfig",
    "ConfigError",
    "DeviceConfig",
    "ExportConfig",
    "MeasureConfig",
    "RetrainConfig",
    "RunConfig",
    "SearchConfig",
    "SelectConfig",
    "SpaceConfig",
    "SupernetConfig",
    "dump_config",
    "explain_config",
    "load_config",
]


#: the deliverables ``export.formats`` may list.
EXPORT_FORMATS = ("onnx", "pytorch", "tflite", "openvino", "executorch", "rknn", "torchscript")


def _choices(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


@dataclass(frozen=True)
class SpaceConfig:
    """The search space: a registry name and its constructor options (``width``, ``resolution``, ...)."""

    name: str = "mbv2"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SupernetConfig:
    """Supernet training (:class:`slimforge.supernet.TrainConfig`).

    ``device`` is deprecated: the run's ``train_device`` trains the supernet; a ``device`` given here
    still overrides it for the supernet alone (for one release).

    ``spos`` with ``bn_affine`` on is what ranks on the layer-wise spaces a run searches by default
    (elastic ``mbv2``: τ +0.64 against two standalone trainings, where the few-shot, affine-free recipe
    of ``supernet train`` ranked at +0.09; BENCHMARKS issue 16). That recipe is the one for ``nb201``:
    set ``method: fewshot`` and ``bn_affine: false`` for an ``nb201`` run.
    """

    method: str = "spos"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.025
    bn_affine: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None


@dataclass(frozen=True)
class CalibrationConfig:
    """The run's audit of its accuracy estimator, on a seeded calibration set of architectures.

    ``size`` architectures (0 turns the audit off; else at least 3) are trained standalone for
    ``epochs`` on the training split and scored on the validation split (or looked up in
    ``table``, a ``index,arch,accuracy`` ground-truth CSV, when one is given). Every estimator
    (``supernet``, ``zero_cost``: the ``proxies`` ensemble, ``num_params``, and a ``blend`` of them
    fitted on the calibration set) is correlated with that accuracy. ``estimator: auto`` keeps the
    supernet unless another estimator ranks better beyond the noise (the lower end of its bootstrap
    interval above the supernet's τ); the run warns when the chosen one is below ``threshold``.
    """

    size: int = 6
    epochs: int = 3
    table: str | None = None
    estimator: str = field(default="auto", metadata=_choices("auto", "supernet", "zero_cost", "num_params", "blend"))
    threshold: float = 0.3
    proxies: str = "meco=2,jacob_cov,num_params"


@dataclass(frozen=True)
class AccuracyConfig:
    """Where the search's ``error`` comes from.

    ``source``: ``supernet`` (inherited weights after BN re-calibration on ``bn_images`` training
    images, scored on the validation split) or ``table:FILE`` (an accuracy table, nb201 only).
    With a supernet, ``calibration`` audits it (and the other estimators) before the search.
    ``finetune_steps``: training batches each candidate's inherited weights are fine-tuned on
    before scoring; ``supernet rank`` uses 8 (it lifted NB201's tau from 0.33 to 0.45, BENCHMARKS
    issue 16), a run 0 by default since it multiplies the search's cost and was measured on NB201 only.
    """

    source: str = "supernet"
    bn_images: int = 256
    eval_images: int | None = None
    finetune_steps: int = 0
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


@dataclass(frozen=True)
class DeviceConfig:
    """A target device: a name for the run, a device spec, and where the search's latency comes from.

    ``cost``: ``lut`` (a latency table built on the device, then summed per layer, scaled by
    ``lut_calibration`` whole networks measured on it; 0 leaves the sums as they are), ``measure``
    (every candidate measured on the device) or ``table`` (a ``table:FILE`` device's own figures).
    """

    name: str = "cpu"
    spec: str = "local-cpu"
    cost: str = field(default="lut", metadata=_choices("lut", "measure", "table"))
    threads: int = 1
    time_cap_s: float = 2.0
    token_file: str | None = None
    lut_calibration: int = 5


@dataclass(frozen=True)
class SearchConfig:
    """The multi-objective search run once per device; objectives are all minimised."""

    algorithm: str = "auto"
    budget: int = 200
    objectives: tuple[str, ...] = ("error", "latency_ms")
    constraints: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectConfig:
    """Which architectures of each device's front go on to retraining.

    ``rule``: ``knee`` (the front's knee point), ``best`` (lowest ``objective`` under the
    search's constraints), ``within`` (cheapest in ``cost`` within ``epsilon`` of the best
    ``objective``) or ``list`` (the architecture strings in ``archs``).
    """

    rule: str = field(default="knee", metadata=_choices("knee", "best", "within", "list"))
    objective: str = "error"
    cost: str = "latency_ms"
    epsilon: float = 1.0
    archs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrainConfig:
    """Training the chosen architectures: ``finetune`` from the supernet's weights (with in-place
    distillation from the supernet's largest sub-network when ``distill``) or from ``scratch``.

    ``teacher``: distil from a trained network of your own instead: a saved model directory, or a
    reference ``path/to/file.py:factory`` / ``package.module:factory`` with ``teacher_weights`` (a
    state_dict file). ``reference``: the hand-designed networks to compare with: zoo names (trained
    at each of ``reference_widths``) or references to your own factories (trained once each).
    """

    mode: str = field(default="finetune", metadata=_choices("finetune", "scratch"))
    epochs: int = 5
    lr: float = 0.02
    batch_size: int = 64
    distill: bool = True
    reference: tuple[str, ...] = ("mobilenet_v2",)
    reference_widths: tuple[float, ...] = (0.35, 0.5)
    reference_epochs: int | None = None
    teacher: str | None = None
    teacher_weights: str | None = None


@dataclass(frozen=True)
class CompressConfig:
    """Compression of each retrained model: an optional searched per-layer policy, then a recipe.

    ``auto``: ``prune`` (AMC-style per-layer pruning ratios) or ``bits`` (HAQ-style per-layer
    bit-widths) searched under ``budget`` (e.g. ``macs=0.5``, ``latency_ms=2``, ``bits=4``) with
    ``search_budget`` evaluated policies; null skips it. ``recipe`` then runs on the result
    (``none`` skips it).

    ``gate``: every recipe stage that changes the exported graph is timed against its input on the
    model's device and dropped when slower by more than ``gate_tolerance`` (``latency``, the
    default; pruning first picks its channel rounding by measurement), kept when slower but
    smaller (``size``), or not timed (``none``).
    """

    recipe: str = "quantize:int8"
    finetune_epochs: int = 1
    max_accuracy_drop: float | None = 1.0
    calibration_images: int = 128
    auto: str | None = field(default=None, metadata=_choices("prune", "bits"))
    budget: str | None = None
    search_budget: int = 40
    gate: str = field(default="latency", metadata=_choices("latency", "size", "none"))
    gate_tolerance: float = 0.05


@dataclass(frozen=True)
class ExportConfig:
    """What each model is delivered as: ``onnx`` (the deployable file, INT8 when quantized, plus its
    FP32 export), ``pytorch`` (a ``state_dict`` + JSON config directory that rebuilds it), and any of
    ``tflite``, ``openvino``, ``executorch``, ``rknn``, ``torchscript`` (converted by
    :func:`slimforge.hardware.export.export_model` at the deployed precision, each checked for top-1
    agreement with the PyTorch model on the test split; a conversion below the threshold is
    reported, not shipped)."""

    formats: tuple[str, ...] = ("onnx", "pytorch")


@dataclass(frozen=True)
class MeasureConfig:
    """Re-measuring the exported models (and the references) on every device.

    Every file of a device is measured in ``rounds`` interleaved rounds (``time_cap_s`` of timed
    runs per file in all); a deployed model more than ``tolerance`` slower than its own FP32 export
    is reported as a regression in the summary and the report. ``runtimes`` re-measures every
    deployed model on further local runtimes (``local-openvino``, ``local-litert``,
    ``local-executorch``, ``local-torch``, ``local-cpu``; ``installed`` for every one installed
    here) in that runtime's format, for the report's per-runtime table.
    """

    threads: int = 1
    time_cap_s: float = 3.0
    rounds: int = 5
    tolerance: float = 0.10
    runtimes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    """One design run: data, space, supernet, devices, search, selection, retraining, compression.

    ``threads``: PyTorch (and ONNX Runtime accuracy-evaluation) threads for training and
    evaluation; null picks the fastest on this machine at start (the run says what it chose).
    Latency is measured with each device's own ``threads``.
    ``train_device``: the torch device every stage that trains or evaluates runs on (supernet,
    calibration, retraining, compression): ``auto`` (a GPU when there is one, else the CPU),
    ``cpu``, ``cuda`` or ``cuda:N``.
    """

    data: str = "digits"
    seed: int = 0
    val_fraction: float = 0.1
    threads: int | None = None
    train_device: str = "auto"
    space: SpaceConfig = field(default_factory=SpaceConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    devices: tuple[DeviceConfig, ...] = (DeviceConfig(),)
    search: SearchConfig = field(default_factory=SearchConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    report_png: bool = True

    def __post_init__(self) -> None:
        _check_semantics(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Validate a plain mapping (parsed YAML); missing keys take their defaults."""
        return build_dataclass(cls, data, "")

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-ready dict with every setting (tuples as lists)."""
        return plain(dataclasses.asdict(self))

    def device(self, name: str) -> DeviceConfig:
        """The device called ``name``."""
        for d in self.devices:
            if d.name == name:
                return d
        raise ConfigError(f"no device {name!r} in the config (devices: {', '.join(d.name for d in self.devices)})")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML config file (UTF-8, no aliases)."""
    from slimforge.io import YamlError, load_yaml

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}; give a readable YAML file") from None
    try:
        data = load_yaml(raw, source=f"config {path}")
    except YamlError as exc:
        raise ConfigError(str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path} must be a YAML mapping of settings, got {type(data).__name__}")
    return RunConfig.from_dict(data)


def dump_config(config: RunConfig) -> str:
    """The config as YAML text (what ``config.yaml`` in the run directory holds)."""
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)


def explain_config() -> str:
    """Every config key with its type, default and allowed values, as Markdown (``docs/config.md``)."""
    lines = [
        "# `slimforge run` config reference",
        "",
        "Generated by `slimforge run --print-config --explain` from the config schema",
        "(`slimforge.runs.config`); a test checks that this file matches it. Every key has a default;",
        "a bad key or value gets a one-line error naming the key, the value and what is allowed.",
        "",
    ]
    explain_dataclass(RunConfig, "", lines)
    explain_dataclass(DeviceConfig, "devices[].", lines)
    return "\n".join(lines).rstrip() + "\n"


_TRAIN_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _check_semantics(config: RunConfig) -> None:
    """Cross-field checks and ranges that the types alone do not say."""
    positive = {
        "seed": (config.seed, 0),
        "supernet.epochs": (config.supernet.epochs, 1),
        "supernet.batch_size": (config.supernet.batch_size, 1),
        "search.budget": (config.search.budget, 1),
        "retrain.epochs": (config.retrain.epochs, 0),
        "retrain.batch_size": (config.retrain.batch_size, 1),
        "compress.finetune_epochs": (config.compress.finetune_epochs, 0),
        "compress.calibration_images": (config.compress.calibration_images, 1),
        "accuracy.bn_images": (config.accuracy.bn_images, 0),
        "accuracy.finetune_steps": (config.accuracy.finetune_steps, 0),
        "measure.threads": (config.measure.threads, 1),
        "measure.rounds": (config.measure.rounds, 1),
    }
    for key, (value, lowest) in positive.items():
        if value < lowest:
            raise ConfigError(f"{key} must be >= {lowest}, got {value!r}")
    for key, value in (
        ("supernet.lr", config.supernet.lr),
        ("retrain.lr", config.retrain.lr),
        ("measure.time_cap_s", config.measure.time_cap_s),
    ):
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value!r}")
    cal = config.accuracy.calibration
    if cal.size != 0 and cal.size < 3:
        raise ConfigError(f"accuracy.calibration.size must be 0 (no audit) or at least 3, got {cal.size!r}")
    if cal.epochs < 1:
        raise ConfigError(f"accuracy.calibration.epochs must be >= 1, got {cal.epochs!r}")
    if not -1 <= cal.threshold <= 1:
        raise ConfigError(f"accuracy.calibration.threshold is a Kendall tau in [-1, 1], got {cal.threshold!r}")
    if config.threads is not None and config.threads < 1:
        raise ConfigError(f"threads must be >= 1 or null (the fastest on this machine), got {config.threads!r}")
    for key, spec in (("train_device", config.train_device), ("supernet.device", config.supernet.device)):
        if spec is not None and not _TRAIN_DEVICE.match(spec):
            raise ConfigError(f"{key} must be auto, cpu, cuda or cuda:N, got {spec!r}")
    for key, value in (("compress.gate_tolerance", config.compress.gate_tolerance),
                       ("measure.tolerance", config.measure.tolerance)):
        if not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1) (0.05 is 5%), got {value!r}")
    if not 0 < config.val_fraction < 1:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {config.val_fraction!r}")
    if config.accuracy.eval_images is not None and config.accuracy.eval_images < 1:
        raise ConfigError(f"accuracy.eval_images must be >= 1 or null, got {config.accuracy.eval_images!r}")
    src = config.accuracy.source
    if src != "supernet" and not (src.startswith("table:") and len(src) > 6):
        raise ConfigError(f"accuracy.source must be supernet or table:FILE, got {src!r}")
    if config.retrain.mode == "finetune" and src != "supernet":
        raise ConfigError(
            f"retrain.mode finetune starts from the supernet's weights, but accuracy.source is {src!r}; "
            "set retrain.mode: scratch"
        )
    if not config.devices:
        raise ConfigError("devices must list at least one device, e.g. [{name: cpu, spec: local-cpu}]")
    names = [d.name for d in config.devices]
    for i, d in enumerate(config.devices):
        if d.name in names[:i]:
            raise ConfigError(f"devices[{i}].name {d.name!r} is used twice; give each device its own name")
        if not d.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                f"devices[{i}].name {d.name!r} must be letters, digits, '-' or '_' (it names a folder)"
            )
        if d.threads < 1 or not d.time_cap_s > 0 or d.lut_calibration < 0:
            raise ConfigError(
                f"devices[{i}]: threads must be >= 1, time_cap_s > 0 and lut_calibration >= 0"
            )
        if (d.cost == "table") != d.spec.startswith("table:"):
            raise ConfigError(
                f"devices[{i}].cost {d.cost!r} does not fit spec {d.spec!r}: a table:FILE device has "
                "cost table, a measured device has cost lut or measure"
            )
    if not config.search.objectives:
        raise ConfigError("search.objectives must name at least one objective, e.g. [error, latency_ms]")
    if config.select.rule == "list" and not config.select.archs:
        raise ConfigError("select.rule list needs select.archs: the architecture strings to retrain")
    if not config.select.epsilon >= 0:
        raise ConfigError(f"select.epsilon must be >= 0, got {config.select.epsilon!r}")
    if config.compress.max_accuracy_drop is not None and not config.compress.max_accuracy_drop >= 0:
        raise ConfigError(f"compress.max_accuracy_drop must be >= 0 or null, got {config.compress.max_accuracy_drop!r}")
    if (config.compress.auto is None) != (config.compress.budget is None):
        raise ConfigError(
            "compress.auto and compress.budget go together, e.g. {auto: prune, budget: macs=0.5}; "
            f"got auto={config.compress.auto!r}, budget={config.compress.budget!r}"
        )
    if config.compress.search_budget < 1:
        raise ConfigError(f"compress.search_budget must be >= 1, got {config.compress.search_budget!r}")
    for i, fmt in enumerate(config.export.formats):
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"export.formats[{i}] must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if "onnx" not in config.export.formats:
        raise ConfigError("export.formats must include onnx: the device measurements run the ONNX file")
    for w in config.retrain.reference_widths:
        if not w > 0:
            raise ConfigError(f"retrain.reference_widths must be > 0, got {w!r}")
