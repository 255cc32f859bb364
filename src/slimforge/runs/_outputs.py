"""What each stage of a run produces: frozen records that round-trip through the run store as JSON.

Paths are relative to the run directory. A stage reads the records of the stages it declares as
inputs (``ctx.output("retrain").models[0].dir``), never an untyped dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slimforge.io import JsonRecord

__all__ = [
    "AutoPolicy",
    "ChosenArch",
    "CompressOutput",
    "CompressedModel",
    "DeviceMeasurements",
    "ExportOutput",
    "ExportedFormat",
    "ExportedModel",
    "ExportedReference",
    "MeasureOutput",
    "MeasuredFile",
    "ReferenceModel",
    "ReferenceOutput",
    "ReportOutput",
    "RetrainOutput",
    "RuntimeFigure",
    "SearchOutput",
    "SelectOutput",
    "SupernetOutput",
    "TrainedModel",
]


@dataclass(frozen=True)
class SupernetOutput(JsonRecord):
    """The trained supernet (``dir`` None when accuracy comes from a table: ``skipped`` says so)."""

    dir: str | None
    method: str
    epochs: int
    seconds: float = 0.0
    images_per_s: float = 0.0
    final_loss: float | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class SearchOutput(JsonRecord):
    """One device's search: its store and ``result.json``, the front's size, where figures came from."""

    device: str
    spec: str
    dir: str
    result: str
    objectives: tuple[str, ...]
    constraints: tuple[str, ...]
    evaluations: int
    front: int
    accuracy_source: str
    cost_source: str
    message: str = ""


@dataclass(frozen=True)
class ChosenArch(JsonRecord):
    """An architecture picked from a device's front, with its search-time metrics."""

    name: str
    device: str
    arch: str
    genome: tuple[int, ...]
    rule: str
    objectives: dict[str, float]
    metrics: dict[str, float]


@dataclass(frozen=True)
class SelectOutput(JsonRecord):
    """Every architecture going on to retraining, over all devices."""

    chosen: tuple[ChosenArch, ...]


@dataclass(frozen=True)
class TrainedModel(JsonRecord):
    """A retrained chosen architecture (saved model in ``dir``); accuracies in percent.

    ``estimated_accuracy_pct`` is what the search's estimator said (validation split);
    ``accuracy_pct`` is measured on ``accuracy_split`` (test when the data has one).
    """

    name: str
    arch: str
    dir: str
    devices: tuple[str, ...]
    estimated_accuracy_pct: float | None
    accuracy_pct: float
    val_accuracy_pct: float
    accuracy_split: str
    mode: str
    distilled: bool
    epochs: int
    seconds: float
    loss_per_epoch: tuple[float, ...] = ()


@dataclass(frozen=True)
class RetrainOutput(JsonRecord):
    """The retrained chosen architectures (one per distinct architecture)."""

    models: tuple[TrainedModel, ...]


@dataclass(frozen=True)
class ReferenceModel(JsonRecord):
    """A hand-designed reference network trained on the same data (FP32 accuracy in percent)."""

    name: str
    model: str
    width: float
    dir: str
    accuracy_pct: float
    val_accuracy_pct: float
    epochs: int
    seconds: float


@dataclass(frozen=True)
class ReferenceOutput(JsonRecord):
    """The trained reference networks."""

    models: tuple[ReferenceModel, ...]


@dataclass(frozen=True)
class AutoPolicy(JsonRecord):
    """A searched per-layer policy (``compress.auto``) and where its record is."""

    kind: str
    budget: str | None
    dir: str
    result: str


@dataclass(frozen=True)
class CompressedModel(JsonRecord):
    """One model after compression: the recipe's output directory and report, the gate's device.

    ``dir``/``report`` are None when there is no recipe; ``source`` is the model the recipe
    started from (the retrained one, or the searched policy's). ``dropped`` lists the stages the
    measured gate dropped; ``budget_met`` is the accuracy budget's verdict.
    """

    name: str
    source: str
    dir: str | None = None
    report: str | None = None
    auto: AutoPolicy | None = None
    gate_device: str | None = None
    kept_stage: int = 0
    dropped: tuple[str, ...] = ()
    budget_met: bool = True
    message: str = ""
    test_accuracy_pct: float | None = None


@dataclass(frozen=True)
class CompressOutput(JsonRecord):
    """Every model's compression."""

    models: tuple[CompressedModel, ...]
    recipe: str
    auto: str | None = None
    budget: str | None = None


@dataclass(frozen=True)
class ExportedFormat(JsonRecord):
    """The model in another deployment format, and its output check against the PyTorch model.

    ``path`` is None when the conversion failed or fell below the agreement threshold (``note``
    says why); nothing is shipped then.
    """

    format: str
    precision: str
    path: str | None
    size_bytes: int | None
    top1_agreement_pct: float | None
    max_abs_diff: float | None
    checked: bool
    note: str = ""


@dataclass(frozen=True)
class ExportedModel(JsonRecord):
    """A chosen model's deliverables: the deployable ONNX (INT8 when kept), its FP32 export, a state_dict dir."""

    name: str
    onnx: str
    bytes: int
    fp32_onnx: str
    fp32_bytes: int
    precision: str
    compressed: bool
    accuracy_pct: float | None
    pytorch: str | None = None
    formats: tuple[ExportedFormat, ...] = ()
    model_dir: str | None = None


@dataclass(frozen=True)
class ExportedReference(JsonRecord):
    """A reference network's exports: FP32, and INT8 (post-training) when the run's recipe quantizes."""

    name: str
    fp32_onnx: str
    fp32_bytes: int
    fp32_accuracy_pct: float
    int8_onnx: str | None = None
    int8_bytes: int | None = None
    int8_accuracy_pct: float | None = None


@dataclass(frozen=True)
class ExportOutput(JsonRecord):
    """Every model's and reference's exported files."""

    models: tuple[ExportedModel, ...]
    references: tuple[ExportedReference, ...] = ()


@dataclass(frozen=True)
class MeasuredFile(JsonRecord):
    """One measured file (or, on a table device, architecture).

    ``form`` is ``deployed``, ``fp32``, ``int8`` (a reference's INT8 export) or ``architecture``.
    """

    name: str
    form: str
    path: str | None
    latency_ms: float
    latency_iqr_ms: float | None
    bytes: int | None = None
    accuracy_pct: float | None = None
    energy_mj: float | None = None


@dataclass(frozen=True)
class DeviceMeasurements(JsonRecord):
    """Everything measured on one device in one interleaved session (so ratios between files hold).

    ``per_round_ms[r][i]`` is file i's median in round r; ratios between two files are taken per
    round, then their median (see :meth:`ratio`).
    """

    device: str
    spec: str
    conditions: str
    files: tuple[MeasuredFile, ...]
    per_round_ms: tuple[tuple[float, ...], ...] = ()
    runtime: str | None = None
    runtime_version: str | None = None
    threads: int | None = None

    def find(self, name: str, form: str) -> int | None:
        """The index of file (``name``, ``form``), or None."""
        return next((i for i, f in enumerate(self.files) if f.name == name and f.form == form), None)

    def ratio(self, i: int, j: int) -> tuple[float, float, float]:
        """Median, first and third quartile over rounds of latency(i) / latency(j)."""
        import numpy as np

        if not self.per_round_ms:
            value = self.files[i].latency_ms / self.files[j].latency_ms
            return value, value, value
        rounds = np.asarray(self.per_round_ms, dtype=float)
        q1, median, q3 = np.percentile(rounds[:, i] / rounds[:, j], [25, 50, 75])
        return float(median), float(q1), float(q3)


@dataclass(frozen=True)
class RuntimeFigure(JsonRecord):
    """One deployed model on one further runtime (``measure.runtimes``), in that runtime's format."""

    name: str
    device: str
    format: str
    latency_ms: float | None
    latency_iqr_ms: float | None
    size_bytes: int | None
    conditions: str = ""
    note: str = ""


@dataclass(frozen=True)
class MeasureOutput(JsonRecord):
    """The re-measurement of every exported file on every device, and on the further runtimes."""

    devices: tuple[DeviceMeasurements, ...] = field(default_factory=tuple)
    runtimes: tuple[RuntimeFigure, ...] = ()

    def on(self, device: str) -> DeviceMeasurements | None:
        """The measurements on device ``device`` (a config device name), or None."""
        return next((d for d in self.devices if d.device == device), None)


@dataclass(frozen=True)
class ReportOutput(JsonRecord):
    """The written report and figures."""

    html: str
    figures: tuple[str, ...] = ()
