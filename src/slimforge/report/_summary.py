"""The run's summary: one typed record behind the terminal summary, ``--json`` and the report's headline.

:mod:`slimforge.runs` fills it from the stages' outputs (every figure measured in the run) and
stores it in the run store; the report reads it from there. Latency comparisons are ratios taken
per interleaved measurement round on one device (deployed vs its own FP32 export, deployed vs the
reference's deployed form), so they hold on a busy machine. Every regression or missed budget is
listed in ``regressions``: nothing is left out of the summary because it looks bad.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slimforge.io import JsonRecord

__all__ = ["SUMMARY_META_KEY", "ChosenSummary", "LatencyFigure", "ReferenceFigure", "RunSummary"]

#: the run store's meta key holding :meth:`RunSummary.to_dict`.
SUMMARY_META_KEY = "summary"


@dataclass(frozen=True)
class LatencyFigure(JsonRecord):
    """A deployed model's latency beside its own FP32 export, measured interleaved on one device.

    ``deployed_vs_fp32`` is the median over rounds of deployed / FP32 (above 1: the deployed file
    is slower), ``ratio_q1``/``ratio_q3`` its quartiles.
    """

    device: str
    conditions: str
    deployed_ms: float
    fp32_ms: float | None
    deployed_vs_fp32: float | None
    ratio_q1: float | None = None
    ratio_q3: float | None = None
    source: str = "measured"


@dataclass(frozen=True)
class ReferenceFigure(JsonRecord):
    """The hand-designed reference compared with: its deployed form (the faster one within budget)."""

    name: str
    form: str
    accuracy_pct: float
    latency_ms: float
    bytes: int | None


@dataclass(frozen=True)
class ChosenSummary(JsonRecord):
    """One chosen model after the whole run; None where a stage has not produced the figure yet.

    Accuracies are percent: ``estimated_accuracy_pct`` is the search estimator's (``estimator``,
    validation split), ``retrained_*`` the PyTorch model after retraining, ``deployed_accuracy_pct``
    the deployed file in ONNX Runtime (test split). ``speedup_vs_reference`` is the reference's
    deployed latency over this model's deployed latency on the same device, in the same session.
    """

    name: str
    arch: str
    devices: tuple[str, ...]
    estimator: str | None = None
    estimated_accuracy_pct: float | None = None
    retrained_accuracy_pct: float | None = None
    retrained_val_accuracy_pct: float | None = None
    deployed_accuracy_pct: float | None = None
    accuracy_split: str = "test"
    precision: str | None = None
    deployed_bytes: int | None = None
    fp32_bytes: int | None = None
    latency: LatencyFigure | None = None
    reference: ReferenceFigure | None = None
    speedup_vs_reference: float | None = None
    compression: str | None = None
    dropped_stages: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSummary(JsonRecord):
    """Front size per device, the chosen models, and what went wrong (``warnings`` are run-wide)."""

    fronts: dict[str, int] = field(default_factory=dict)
    evaluations: dict[str, int] = field(default_factory=dict)
    chosen: tuple[ChosenSummary, ...] = ()
    warnings: tuple[str, ...] = ()
    report: str | None = None

    @property
    def regressions(self) -> tuple[str, ...]:
        """Every model's regressions and the run's warnings, each naming what it is about."""
        return self.warnings + tuple(f"{c.name}: {r}" for c in self.chosen for r in c.regressions)

    def format(self) -> str:
        """A few lines for the terminal."""
        lines = []
        if self.fronts:
            lines.append(
                "front: " + ", ".join(f"{d} {n} architectures of {self.evaluations.get(d, 0)} evaluated"
                                      for d, n in self.fronts.items())
            )
        for c in self.chosen:
            lines.append(f"chosen {c.name}: {c.arch}")
            acc = c.deployed_accuracy_pct if c.deployed_accuracy_pct is not None else c.retrained_accuracy_pct
            lines.append(
                f"  {c.accuracy_split} accuracy {_fmt(acc, '%')} deployed ({c.precision or '?'}), "
                f"{_fmt(c.retrained_accuracy_pct, '%')} retrained; validation: {c.estimator or 'estimate'} "
                f"{_fmt(c.estimated_accuracy_pct, '%')}, retrained {_fmt(c.retrained_val_accuracy_pct, '%')}"
            )
            if c.latency is not None:
                lat = c.latency
                own = ""
                if lat.fp32_ms is not None and lat.deployed_vs_fp32 is not None:
                    verdict = "slower than" if lat.deployed_vs_fp32 > 1 else "vs"
                    own = f" {verdict} {lat.fp32_ms:.3f} ms for its own FP32 export ({lat.deployed_vs_fp32:.2f}x)"
                lines.append(
                    f"  latency {lat.deployed_ms:.3f} ms deployed{own} on {lat.device}; "
                    f"size {_kib(c.deployed_bytes)} deployed, {_kib(c.fp32_bytes)} FP32"
                )
            if c.reference is not None and c.speedup_vs_reference is not None:
                ref = c.reference
                word = "faster" if c.speedup_vs_reference >= 1 else "SLOWER"
                factor = c.speedup_vs_reference if c.speedup_vs_reference >= 1 else 1 / c.speedup_vs_reference
                lines.append(
                    f"  {factor:.2f}x {word} than {ref.name} deployed as {ref.form} "
                    f"({ref.accuracy_pct:.2f}%, {ref.latency_ms:.3f} ms), deployed vs deployed"
                )
            if c.dropped_stages:
                lines.append(f"  the measured gate dropped: {', '.join(c.dropped_stages)} (slower than their input)")
        problems = self.regressions
        if problems:
            lines.append(f"{len(problems)} regression(s) or missed budget(s):")
            lines += [f"  ! {p}" for p in problems]
        elif self.chosen:
            lines.append("no regression: every deployed model is as fast as its own FP32 export and within budget")
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n".join(lines)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _kib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KiB"
