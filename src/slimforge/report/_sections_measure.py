"""The measurement section: the run's models and the reference zoo models on each device.

Following the measurement contract, figures taken under different conditions (device, runtime,
threads, batch, input shape, protocol, source) go into separate tables and plots, each headed by
its conditions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slimforge.report._charts import COLORS, point, safe_name, series, xy_chart
from slimforge.report._html import Html, esc, fmt, table
from slimforge.report._run import RunData, SectionMissing, read_json
from slimforge.report._section import Figure, Section, chart_box, missing_section

__all__ = ["measurement_section"]

_HEADERS = [
    "model", "kind", "form", "precision", "latency ms", "IQR ms", "stable", "energy mJ", "energy from",
    "accuracy %", "accuracy from", "cached", "ONNX sha256",
]  # fmt: skip


@dataclass(frozen=True)
class _Entry:
    kind: str  # "chosen" or "reference"
    name: str
    device: str  # the device's name in the config
    form: str  # "deployable", "fp32" or "architecture" (a table device)
    measurement: dict[str, Any]  # DeviceMeasurement.to_dict()
    accuracy_pct: float | None
    accuracy_source: str

    def row(self) -> list[Any]:
        m = self.measurement
        return [
            self.name, self.kind, self.form, m.get("precision"), m.get("latency_ms"),
            m.get("latency_ms_iqr"), m.get("stable"), m.get("energy_mj"), m.get("energy_source"),
            self.accuracy_pct, self.accuracy_source, m.get("cached"), (m.get("model_sha256") or "")[:12],
        ]  # fmt: skip


def _conditions(e: _Entry) -> dict[str, Any]:
    m = e.measurement
    latency = m.get("latency") or {}
    return {
        "device": e.device,
        "spec": m.get("device"),
        "device_info": {k: v for k, v in (m.get("device_info") or {}).items() if k not in ("name", "note")},
        "threads": m.get("threads"),
        "input_shape": m.get("input_shape"),
        "source": m.get("source"),
        "batch_size": latency.get("batch_size"),
        "statistic": latency.get("statistic"),
        "protocol": latency.get("protocol"),
    }


def _describe(m: dict[str, Any]) -> list[tuple[str, Any]]:
    info, latency = m.get("device_info") or {}, m.get("latency") or {}
    runtime = " ".join(str(v) for v in (info.get("runtime"), info.get("runtime_version")) if v)
    cpu = info.get("cpu_model")
    if cpu and info.get("cpu_count"):
        cpu = f"{cpu} ({info['cpu_count']} logical cores)"
    statistic = f", the {latency['statistic']} of the timed runs" if latency.get("statistic") else ""
    facts = [
        ("device", f"{m.get('device')} ({info.get('kind', '?')})"),
        ("runtime", runtime or None),
        ("CPU", cpu),
        ("host", info.get("hostname")),
        ("platform", info.get("platform")),
        ("threads", m.get("threads")),
        ("batch size", latency.get("batch_size")),
        ("input shape", "x".join(map(str, m.get("input_shape") or [])) or None),
        ("figure", f"{m.get('source')}{statistic}"),
        ("protocol", ", ".join(f"{k} {fmt(v)}" for k, v in (latency.get("protocol") or {}).items()) or None),
        ("note", info.get("note") or None),
    ]
    return [(k, v) for k, v in facts if v is not None]


def _accuracies(run: RunData) -> dict[tuple[str, str], tuple[float, str]]:
    """(model, form) -> accuracy and where it comes from: retrained, or the kept compression stage."""
    out: dict[tuple[str, str], tuple[float, str]] = {}
    try:
        for m in run.outputs("retrain").get("models", []):
            if isinstance(m.get("accuracy_pct"), (int, float)):
                split = m.get("accuracy_split", "test")
                for form in ("deployable", "fp32", "architecture"):
                    out[m["name"], form] = (m["accuracy_pct"], f"retrained, {split}")
    except SectionMissing:
        pass
    try:
        compressed = run.outputs("compress").get("models", [])
    except SectionMissing:
        compressed = []
    for m in compressed:
        try:
            report = read_json(run.path(m["report"]), "compression report")
            kept = report["stages"][report["kept_stage"]]
        except (SectionMissing, KeyError, IndexError, TypeError):
            continue  # not compressed (recipe none) or unreadable: the retrained figure stands
        if kept.get("test_accuracy_pct") is not None:
            out[m["name"], "deployable"] = (kept["test_accuracy_pct"], "compressed, test")
        elif kept.get("val_accuracy_pct") is not None:
            out[m["name"], "deployable"] = (kept["val_accuracy_pct"], "compressed, val")
    return out


def _entries(run: RunData, outputs: dict[str, Any]) -> list[_Entry]:
    accuracy = _accuracies(run)
    out = []
    for m in outputs.get("models", []):
        name, form = str(m.get("name")), str(m.get("form", "deployable"))
        acc, source = accuracy.get((name, form), (None, ""))
        out.append(
            _Entry("chosen", name, str(m.get("device")), form, m.get("measurement") or {}, acc, source)
        )
    for r in outputs.get("reference", []):
        acc = r.get("accuracy_pct")
        measurement = r.get("measurement") or {}
        form = str(r.get("form", "fp32"))
        out.append(
            _Entry("reference", str(r.get("name")), str(r.get("device")), form, measurement, acc, "retrained")
        )
    return out


def _chart(device: str, i: int, members: list[_Entry]) -> dict[str, Any] | None:
    marks: dict[str, list[dict[str, Any]]] = {"chosen": [], "reference": []}
    for e in members:
        ms, acc = e.measurement.get("latency_ms"), e.accuracy_pct
        if isinstance(acc, (int, float)) and isinstance(ms, (int, float)):
            plain = e.kind == "reference" or e.form in ("deployable", "architecture")
            label = e.name if plain else f"{e.name} ({e.form})"
            tip = [label, f"{fmt(ms)} ms, {fmt(acc)} % ({e.accuracy_source})"]
            marks[e.kind].append(point(ms, acc, tip, label=label))
    if not marks["chosen"] and not marks["reference"]:
        return None
    return xy_chart(
        f"Measured on {device} (conditions {i})",
        "latency (ms)",
        "accuracy (%)",
        [
            series("this run's models", "marks", COLORS["chosen"], marks["chosen"]),
            series("reference (zoo)", "marks", COLORS["reference"], marks["reference"]),
        ],
    )


def measurement_section(run: RunData) -> Section:
    """Latency and energy of the run's and the reference models, grouped by measurement conditions."""
    key, title = "measurement", "Measurements on the device"
    try:
        entries = _entries(run, run.outputs("measure"))
    except SectionMissing as exc:
        return missing_section(key, title, str(exc))
    if not entries:
        return missing_section(key, title, "the measure stage measured no model")
    groups: dict[str, list[_Entry]] = {}
    for e in entries:
        groups.setdefault(json.dumps(_conditions(e), sort_keys=True, default=str), []).append(e)
    parts, charts, figures = [], {}, []
    for i, members in enumerate(groups.values(), start=1):
        device = members[0].device
        parts.append(f"<h3>{esc(device)}: conditions {i}</h3>")
        parts.append(table(["", ""], _describe(members[0].measurement), cls="kv"))
        parts.append(table(_HEADERS, [e.row() for e in members]))
        chart = _chart(device, i, members)
        if chart is not None:
            chart_id, png = f"measured-{safe_name(device)}-{i}", f"measured_{safe_name(device)}_{i}.png"
            charts[chart_id] = chart
            figures.append(Figure(png, (chart,)))
            parts.append(chart_box(chart_id, png))
    parts.append(
        '<p class="note">form: deployable (the exported, compressed model), fp32 (its uncompressed export), '
        "architecture (a device table's figure); reference: hand-designed zoo models trained and measured "
        "the same way. Each table holds figures taken under one set of conditions only.</p>"
    )
    return Section(key=key, title=title, body=Html("".join(parts)), charts=charts, figures=tuple(figures))
