"""The model sections: chosen architectures, estimated vs true accuracy, per-stage compression."""

from __future__ import annotations

from typing import Any

from slimforge.report._charts import COLORS, point, series, xy_chart
from slimforge.report._html import Html, code, esc, fmt, table
from slimforge.report._run import RunData, SectionMissing, read_json
from slimforge.report._section import Figure, Section, chart_box, from_stage, missing_section

__all__ = ["accuracy_section", "compression_section", "select_section"]


def _pairs(values: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {fmt(v)}" for k, v in (values or {}).items())


@from_stage("select", "select", "Chosen architectures", "chosen", "the select stage chose no architecture")
def select_section(run: RunData, outputs: dict[str, Any], key: str, title: str) -> Section:
    """The architectures the select stage chose, with the rule and their search objectives."""
    rows = [
        [c.get("name"), c.get("device"), code(c.get("arch")), c.get("rule"), _pairs(c.get("objectives"))]
        for c in outputs["chosen"]
    ]
    body = table(["name", "device", "architecture", "rule", "objectives (search estimates)"], rows)
    return Section(key=key, title=title, body=body)


def _retrained_row(m: dict[str, Any]) -> list[Any]:
    est, true = m.get("estimated_accuracy_pct"), m.get("accuracy_pct")
    gap = true - est if isinstance(est, (int, float)) and isinstance(true, (int, float)) else None
    how = " + ".join(str(x) for x in (m.get("mode"), "distilled" if m.get("distilled") else None) if x)
    return [
        m.get("name"), code(m.get("arch")), est, true, gap, m.get("accuracy_split", "test"),
        m.get("val_accuracy_pct"), how or "-", m.get("epochs"), m.get("seconds"),
    ]  # fmt: skip


@from_stage("retrain", "accuracy", "Estimated vs true accuracy")
def accuracy_section(run: RunData, outputs: dict[str, Any], key: str, title: str) -> Section:
    """Search-estimated against true (retrained) accuracy of each retrained model, and the references."""
    models = outputs.get("models", [])
    try:
        references = run.outputs("reference").get("models", [])
    except SectionMissing:
        references = []
    if not models and not references:
        return missing_section(key, title, "the retrain stage trained no model")
    parts: list[str] = []
    charts: dict[str, dict[str, Any]] = {}
    if models:
        points = [
            point(
                m.get("estimated_accuracy_pct"),
                m.get("accuracy_pct"),
                [f"{m.get('name')}: {m.get('arch')}",
                 f"estimated {fmt(m.get('estimated_accuracy_pct'))} %, true {fmt(m.get('accuracy_pct'))} %"],
                label=str(m.get("name")),
            )
            for m in models
        ]  # fmt: skip
        charts["accuracy"] = xy_chart(
            "Estimated (search) vs true (retrained) accuracy",
            "estimated accuracy (%)",
            "true accuracy (%)",
            [series("retrained models", "marks", COLORS["chosen"], points)],
            diagonal=True,
        )
        headers = ["name", "architecture", "estimated %", "true %", "true - estimated", "split", "val %",
                   "training", "epochs", "seconds"]  # fmt: skip
        parts += [
            table(headers, [_retrained_row(m) for m in models]),
            chart_box("accuracy", "accuracy.png"),
            '<p class="note">estimated: the accuracy the search used (supernet or table); true: accuracy of '
            "the retrained model on the split shown; points on the dashed line were estimated exactly.</p>",
        ]
    if references:
        fields = ("name", "model", "width", "accuracy_pct", "val_accuracy_pct", "epochs", "seconds")
        rows = [[r.get(f) for f in fields] for r in references]
        parts.append("<h3>Reference zoo models, trained the same way</h3>")
        parts.append(table(["name", "model", "width", "accuracy %", "val %", "epochs", "seconds"], rows))
    figures = tuple(Figure("accuracy.png", (c,)) for c in charts.values())
    return Section(key=key, title=title, body=Html("".join(parts)), charts=charts, figures=figures)


_STAGE_HEADERS = [
    "#", "stage", "kind", "val %", "test %", "params", "non-zero", "MACs", "ONNX bytes", "packed bytes",
    "latency ms", "IQR ms", "stable", "within budget", "gate", "seconds",
]  # fmt: skip
_STAGE_FIELDS = [
    "stage", "kind", "val_accuracy_pct", "test_accuracy_pct", "num_params", "num_nonzero_params",
    "macs", "onnx_bytes", "packed_bytes", "latency_ms", "latency_iqr_ms", "latency_stable", "within_budget",
    "decision", "seconds",
]  # fmt: skip


def _stage_rows(rows: list[dict[str, Any]], label: str = "") -> list[list[Any]]:
    return [[label or r.get("index"), *(r.get(f) for f in _STAGE_FIELDS)] for r in rows]


def _facts(report: dict[str, Any]) -> list[tuple[str, Any]]:
    budget = report.get("max_accuracy_drop_pct")
    finetune = f"{fmt(report.get('finetune_epochs'))} epochs per stage, lr {fmt(report.get('finetune_lr'))}"
    return [
        ("model", report.get("model")),
        ("recipe", report.get("recipe")),
        ("data", report.get("data")),
        ("input shape", "x".join(map(str, report.get("input_shape") or [])) or None),
        ("finetune", finetune),
        ("accuracy budget", "none" if budget is None else f"at most {fmt(budget)} points below the original"),
        ("kept stage", report.get("kept_stage")),
        ("result", report.get("message")),
        ("latency", report.get("latency_conditions")),
        ("MACs", report.get("macs_note")),
    ]


_AUTO_HEADERS = ["model", "policy", "estimate %", "val %", "test %", "MACs", "bytes", "latency ms", "budget"]


def _auto(run: RunData, auto: dict[str, Any] | None) -> str:
    """The searched per-layer policy against its uniform baseline (``compress.auto``), if there is one."""
    if not auto:
        return ""
    try:
        result = read_json(run.path(auto["result"]), "policy search result")
        rows = [
            [r["name"], r["policy"], r["estimate_accuracy_pct"], r["val_accuracy_pct"], r["test_accuracy_pct"],
             r["macs"], r["bytes"], r["latency_ms"], "met" if r["within_budget"] else "over"]
            for r in result["rows"]
        ]
    except SectionMissing as exc:
        return f'<p class="missing">{esc(str(exc))}</p>'
    except (KeyError, TypeError) as exc:
        return f'<p class="missing">the policy search result is not in the expected format ({esc(repr(exc))})</p>'
    head = f"<p>searched per-layer {esc(str(auto.get('kind')))} policy under {esc(str(auto.get('budget')))}: "
    return head + f"{esc(str(result.get('message', '')))}</p>" + table(_AUTO_HEADERS, rows)


def _compression(run: RunData, entry: dict[str, Any], recipe: str | None) -> str:
    name = str(entry.get("name", "?"))
    head = f"<h3>{esc(name)}</h3>" + _auto(run, entry.get("auto"))
    if not entry.get("report"):
        return head + f'<p class="missing">no recipe run (recipe {esc(recipe or "none")})</p>'
    try:
        report = read_json(run.path(entry["report"]), "compression report")
        stages, comparisons = report["stages"], report.get("comparisons", [])
        rows = _stage_rows(stages) + _stage_rows(comparisons, label="vs")
        notes = [f"{r.get('stage')}: gate {r.get('decision')}: {r.get('decision_reason')}"
                 for r in stages if r.get("decision") in ("kept", "dropped") and r.get("decision_reason")]
        notes += [f"{r.get('stage')}: {n}" for r in [*stages, *comparisons] for n in r.get("notes", [])]
        facts = _facts(report)
    except SectionMissing as exc:
        return head + f'<p class="missing">{esc(str(exc))}</p>'
    except (KeyError, TypeError, AttributeError) as exc:
        return (
            head
            + f'<p class="missing">the compression report is not in the expected format ({esc(repr(exc))})'
            + "</p>"
        )
    note_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return (
        head
        + table(["", ""], facts, cls="kv")
        + table(_STAGE_HEADERS, rows)
        + (f"<ul class='notes'>{note_html}</ul>" if note_html else "")
    )


@from_stage(
    "compress", "compression", "Compression, stage by stage", "models", "the compress stage compressed no model"
)
def compression_section(run: RunData, outputs: dict[str, Any], key: str, title: str) -> Section:
    """Each model's compression table: one row per stage, plus the wrapped tools side by side ("vs")."""
    body = "".join(_compression(run, m, outputs.get("recipe")) for m in outputs["models"]) + (
        '<p class="note">Row 0 is the model before compression; accuracy is that of each stage\'s ONNX file; '
        "latency the median of interleaved runs at batch 1 on the gate's device; gate: kept or dropped by "
        "the measured gate (a stage that changes the graph is timed against its input and dropped when "
        "slower); vs rows: the wrapped tools used directly.</p>"
    )
    return Section(key=key, title=title, body=Html(body))
