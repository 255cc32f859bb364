"""The measurement section: the run's models and the reference networks on each device.

Each device's files were measured in one interleaved session (the measure stage), so one table per
device holds figures taken under one set of conditions, headed by them, as the measurement
contract asks. Ratios to a model's own FP32 export are per-round medians.
"""

from __future__ import annotations

from typing import Any

from slimforge.report._charts import COLORS, point, safe_name, series, xy_chart
from slimforge.report._html import Html, esc, fmt, table
from slimforge.report._run import RunData, SectionMissing
from slimforge.report._section import Figure, Section, chart_box, from_stage

__all__ = ["measurement_section"]

_HEADERS = ["model", "kind", "form", "latency ms", "IQR ms", "vs own FP32", "accuracy %", "bytes", "energy mJ"]
_FORMS = {"deployed": "deployed (shipped file)", "fp32": "FP32 export", "int8": "INT8 export",
          "architecture": "architecture (table)"}


def _ratio(device: dict[str, Any], i: int) -> float | None:
    """Median over rounds of file i / the same model's FP32 export (None for the FP32 file itself)."""
    files, rounds = device["files"], device.get("per_round_ms") or []
    f = files[i]
    if f["form"] == "fp32":
        return None
    j = next((k for k, g in enumerate(files) if g["name"] == f["name"] and g["form"] == "fp32"), None)
    if j is None or not rounds:
        return None
    ratios = sorted(r[i] / r[j] for r in rounds)
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2


def _rows(device: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for i, f in enumerate(device["files"]):
        kind = "reference" if str(f["name"]).startswith("ref-") else "chosen"
        ratio = _ratio(device, i)
        rows.append([f["name"], kind, _FORMS.get(f["form"], f["form"]), f["latency_ms"], f.get("latency_iqr_ms"),
                     "-" if ratio is None else f"{ratio:.2f}x", f.get("accuracy_pct"), f.get("bytes"),
                     f.get("energy_mj")])
    return rows


def _chart(device: dict[str, Any]) -> dict[str, Any] | None:
    marks: dict[str, list[dict[str, Any]]] = {"chosen": [], "reference": []}
    for f in device["files"]:
        acc, ms = f.get("accuracy_pct"), f.get("latency_ms")
        if not isinstance(acc, (int, float)) or not isinstance(ms, (int, float)):
            continue
        kind = "reference" if str(f["name"]).startswith("ref-") else "chosen"
        label = f"{f['name']} ({f['form']})"
        marks[kind].append(point(ms, acc, [label, f"{fmt(ms)} ms, {fmt(acc)} %"], label=label))
    if not marks["chosen"] and not marks["reference"]:
        return None
    return xy_chart(
        f"Measured on {device['device']} ({device['spec']})",
        "latency (ms)",
        "accuracy (%)",
        [
            series("this run's models", "marks", COLORS["chosen"], marks["chosen"]),
            series("reference (zoo)", "marks", COLORS["reference"], marks["reference"]),
        ],
    )


@from_stage(
    "measure", "measurement", "Measurements on the device", "devices", "the measure stage measured no model"
)
def measurement_section(run: RunData, outputs: dict[str, Any], key: str, title: str) -> Section:
    """Latency, accuracy and size of every deployed file, its FP32 export and the references, per device."""
    devices = outputs["devices"]
    parts, charts, figures = [], {}, []
    for device in devices:
        runtime = " ".join(str(v) for v in (device.get("runtime"), device.get("runtime_version")) if v)
        facts = [("device", f"{device['device']} ({device['spec']})"), ("runtime", runtime or "-"),
                 ("threads", device.get("threads")), ("conditions", device.get("conditions"))]
        parts.append(f"<h3>{esc(device['device'])}</h3>")
        parts.append(table(["", ""], facts, cls="kv"))
        parts.append(table(_HEADERS, _rows(device)))
        chart = _chart(device)
        if chart is not None:
            name = safe_name(device["device"])
            charts[f"measured-{name}"] = chart
            figures.append(Figure(f"measured_{name}.png", (chart,)))
            parts.append(chart_box(f"measured-{name}", f"measured_{name}.png"))
    runtimes = run.outputs("measure").get("runtimes") or []
    if runtimes:
        rows = [[r["name"], r["device"], r["format"], r.get("latency_ms"), r.get("latency_iqr_ms"), r.get("size_bytes"),
                 r.get("note") or r.get("conditions", "")] for r in runtimes]
        parts.append("<h3>The deployed models on other runtimes</h3>")
        parts.append(table(["model", "runtime", "format", "latency ms", "IQR ms", "bytes", "conditions / note"], rows))
        parts.append('<p class="note">Each runtime\'s models were measured interleaved in one session of their own; '
                     "compare across runtimes with that in mind.</p>")
    parts += _exports(run)
    parts.append(
        '<p class="note">deployed: the file the run ships (INT8 when the measured gate kept quantization); '
        "FP32 export: the same model uncompressed; reference: hand-designed networks trained on the same data, "
        "exported FP32 (and INT8 by the same quantizer when the recipe quantizes). Accuracy: test split, the "
        "file itself in ONNX Runtime. All files of a device were measured interleaved in one session.</p>"
    )
    return Section(key=key, title=title, body=Html("".join(parts)), charts=charts, figures=tuple(figures))


def _exports(run: RunData) -> list[str]:
    """The deployed models in the further formats of ``export.formats``, with their output checks."""
    try:
        models = run.outputs("export").get("models", [])
    except SectionMissing:
        return []
    rows = [[m["name"], f["format"], f["precision"], f.get("path") or "not shipped", f.get("size_bytes"),
             f.get("top1_agreement_pct"), f.get("max_abs_diff"), f.get("note") or ""]
            for m in models for f in m.get("formats", [])]
    if not rows:
        return []
    return ["<h3>Exports</h3>", table(["model", "format", "precision", "file", "bytes", "top-1 agreement %",
                                       "max |diff|", "note"], rows)]
