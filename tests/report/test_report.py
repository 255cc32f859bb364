"""`slimforge.report` and `slimforge report`: a synthetic run directory built as the pipeline writes one.

The search result is real (a random search on the NAS-Bench-201 tables under ../shared/data); the
retrain, compress and measure outputs are fake but well-formed (the real record classes).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError
from slimforge.io import FORMAT_VERSION, RunStore, search_stage
from slimforge.report import ReportResult, plot_fronts, render_report

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "nb201"
DEVICE = f"table:{DATA / 'device_pi5_onnxruntime.csv'}"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"NAS-Bench-201 tables not found at {DATA}")
# A hostile name: must come out escaped in HTML and intact through the embedded JSON.
EVIL = "knee $\\frac{$ </script><b onmouseover=alert(1)>&co"
CONFIG = "# slimforge run config\nname: \"<script>alert('x')</script>\"\ndevices:\n  pi5: table:pi5.csv\n"


def _problem():
    from slimforge.search import build_problem

    return build_problem(
        "nb201",
        "error,latency_ms",
        accuracy_table=DATA / "accuracy_cifar10.csv",
        device=DEVICE,
        constraints=["latency_ms <= 5"],
    )


@pytest.fixture(scope="module")
def search_result() -> dict:
    if not DATA.is_dir():
        pytest.skip(f"NAS-Bench-201 tables not found at {DATA}")
    from slimforge.search import minimize

    return minimize(_problem(), "random", budget=60, seed=0).to_dict()


def _compression_json(name: str) -> str:
    from slimforge.compress import CompressionReport, StageResult

    def row(i, stage, kind, acc, macs, size, ms):
        return StageResult(
            index=i,
            stage=stage,
            kind=kind,
            onnx_file=f"{i}.onnx",
            val_accuracy_pct=acc,
            test_accuracy_pct=acc - 0.5,
            num_params=20_000 - 5_000 * i,
            num_nonzero_params=19_000 - 5_000 * i,
            macs=macs,
            onnx_bytes=size,
            packed_bytes=None,
            latency_ms=ms,
            latency_iqr_ms=0.01,
            latency_stable=True,
            seconds=1.5,
            within_budget=True,
            notes=(f"{name} note {i}",) if i else (),
        )

    report = CompressionReport(
        model=name,
        data="digits",
        recipe="prune:0.5 > int8",
        input_shape=(1, 1, 8, 8),
        finetune_epochs=1,
        finetune_lr=0.01,
        max_accuracy_drop_pct=1.0,
        budget_met=True,
        kept_stage=2,
        message="kept stage 2",
        stages=(
            row(0, "original", "none", 95.0, 100_000, 80_000, 0.2),
            row(1, "prune:0.5", "prune", 94.5, 50_000, 40_000, 0.12),
            row(2, "int8", "quantize", 94.2, 50_000, 12_000, 0.08),
        ),
        comparisons=(row(1, "ort-int8", "quantize", 93.9, 100_000, 25_000, 0.1),),
        latency_conditions="onnxruntime 1.x, 1 thread, batch 1",
        macs_note="MACs = FLOPs / 2",
        details={},
    )
    return report.to_json()


def _stage_outputs(result: dict) -> dict[str, dict]:
    """Outputs of the stages after the search, made with the record classes slimforge.runs' stages use."""
    from slimforge.hardware.devices import get_device
    from slimforge.runs._outputs import (
        ChosenArch,
        CompressedModel,
        CompressOutput,
        DeviceMeasurements,
        ExportedModel,
        ExportedReference,
        ExportOutput,
        MeasuredFile,
        MeasureOutput,
        ReferenceModel,
        ReferenceOutput,
        RetrainOutput,
        SelectOutput,
        TrainedModel,
    )

    front = result["front"]
    picks = [(EVIL, front[len(front) // 2]), ("pi5-fastest", front[-1])]
    names = [n for n, _ in picks]
    chosen = [ChosenArch(n, "pi5", e["arch"], tuple(e["genome"]), "knee", e["objectives"], e["metrics"])
              for n, e in picks]  # fmt: skip
    retrained = [TrainedModel(n, e["arch"], f"models/m{i}/trained", ("pi5",), e["metrics"]["accuracy"],
                              e["metrics"]["accuracy"] - i - 1, 90.0, "test", "finetune", True, 2, 30.0)
                 for i, (n, e) in enumerate(picks)]  # fmt: skip
    reference = ReferenceModel("ref-mobilenet_v2-0.5", "mobilenet_v2", 0.5, "references/ref/trained", 91.0, 90.5,
                               5, 50.0)
    table_device = get_device(DEVICE)
    pi5 = DeviceMeasurements("pi5", DEVICE, "figures of the device table", tuple(
        MeasuredFile(n, "architecture", None, table_device.measure(e["arch"]).latency_ms, None,
                     accuracy_pct=e["metrics"]["accuracy"] - i - 1) for i, (n, e) in enumerate(picks)
    ))  # fmt: skip
    files = [MeasuredFile(n, "deployed", f"models/m{i}/model.onnx", 1.0 + i, 0.05, 12_000, 90.0 - i)
             for i, n in enumerate(names)]  # fmt: skip
    files += [MeasuredFile(n, "fp32", f"models/m{i}/fp32.onnx", 1.5 + i, 0.05, 40_000) for i, n in enumerate(names)]
    files += [MeasuredFile(reference.name, "fp32", "references/ref/fp32.onnx", 4.0, 0.1, 90_000, 91.0)]
    rounds = [tuple(f.latency_ms for f in files)] * 3
    cpu = DeviceMeasurements("cpu", "local-cpu", "onnxruntime 1.20.0, 1 thread, batch 1, CPU Test CPU",
                             tuple(files), tuple(rounds), "onnxruntime", "1.20.0", 1)
    from slimforge.estimators import audit_estimators

    truth = [61.0, 70.5, 66.0, 72.0, 58.5]
    audit = audit_estimators({"supernet": [30.0, 41.0, 36.0, 40.0, 29.0], "num_params": [5.1, 5.3, 5.0, 5.4, 5.2]},
                             truth, archs=[e["arch"] for e in result["evaluations"][:5]], seed=0)
    return {
        "calibrate": {"audit": audit.to_dict(), "skipped": None, "dir": "calibration", "seconds": 12.0},
        "select": SelectOutput(tuple(chosen)).to_dict(),
        "retrain": RetrainOutput(tuple(retrained)).to_dict(),
        "reference": ReferenceOutput((reference,)).to_dict(),
        "compress": CompressOutput(tuple(
            CompressedModel(n, f"models/m{i}/trained", f"models/m{i}/compressed",
                            f"models/m{i}/compressed/compression.json", gate_device="local-cpu", kept_stage=2)
            for i, n in enumerate(names)
        ), recipe="prune:0.5 > int8").to_dict(),  # fmt: skip
        "export": ExportOutput(tuple(
            ExportedModel(n, f"models/m{i}/model.onnx", 12_000, f"models/m{i}/fp32.onnx", 40_000, "int8", True,
                          90.0 - i)
            for i, n in enumerate(names)
        ), (ExportedReference(reference.name, "references/ref/fp32.onnx", 90_000, 91.0),)).to_dict(),  # fmt: skip
        "measure": MeasureOutput((pi5, cpu)).to_dict(),
    }


def _summary(outputs: dict) -> dict:
    from slimforge.report import ChosenSummary, LatencyFigure, ReferenceFigure, RunSummary

    chosen = [
        ChosenSummary(m["name"], m["arch"], ("pi5",), "supernet", m["estimated_accuracy_pct"], m["accuracy_pct"],
                      90.0, 89.5, "test", "int8", 12_000, 40_000,
                      LatencyFigure("local-cpu", "onnxruntime 1.20.0, 1 thread", 1.0, 1.5, 0.67, 0.66, 0.68),
                      ReferenceFigure("ref-mobilenet_v2-0.5", "fp32", 91.0, 4.0, 90_000), 4.0,
                      regressions=("a regression <b>named</b>",) if i else ())
        for i, m in enumerate(outputs["retrain"]["models"])
    ]  # fmt: skip
    return RunSummary({"pi5": 5}, {"pi5": 60}, tuple(chosen)).to_dict()


def make_run(root: Path, result: dict | None, upto: str = "measure") -> Path:
    """A run directory with every stage up to ``upto`` done, the next one running (no search if no result)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    order = ["supernet", "search", "select", "retrain", "reference", "compress", "export", "measure"]
    with RunStore(root / "store.sqlite") as store:
        store.set_meta("run", {"format_version": FORMAT_VERSION, "slimforge": "0.1.0", "config": {}})
        supernet = {"dir": "supernet", "method": "spos", "epochs": 3, "seconds": 12.5,
                    "images_per_s": 800.0, "val_accuracy_pct": None}  # fmt: skip
        store.set_stage("supernet", "done", supernet)
        if result is None:
            return root
        store.set_stage("calibrate", "done", _stage_outputs(result)["calibrate"])
        (root / "search" / "pi5").mkdir(parents=True)
        (root / "search" / "pi5" / "result.json").write_text(json.dumps(result), encoding="utf-8")
        store.set_stage(search_stage("pi5"), "done", {
            "device": "pi5", "spec": DEVICE, "dir": "search/pi5", "result": "search/pi5/result.json",
            "objectives": result["objectives"], "constraints": result["constraints"],
            "evaluations": result["num_evaluations"], "front": len(result["front"]),
            "accuracy_source": "table", "cost_source": "table"})  # fmt: skip
        outputs = _stage_outputs(result)
        for name in order[2 : order.index(upto) + 1]:
            store.set_stage(name, "done", outputs[name])
        if upto == "measure":
            store.set_meta("summary", _summary(outputs))
        if upto != "measure":
            store.set_stage(order[order.index(upto) + 1], "running", {})
    if order.index(upto) >= order.index("compress"):
        for m in outputs["compress"]["models"]:
            path = root / m["report"]
            path.parent.mkdir(parents=True)
            path.write_text(_compression_json(m["name"]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def full(tmp_path_factory, search_result):
    run_dir = make_run(tmp_path_factory.mktemp("report") / "run", search_result)
    store_bytes = (run_dir / "store.sqlite").read_bytes()
    result = render_report(run_dir)
    return run_dir, result, result.html_path.read_text(encoding="utf-8"), store_bytes


def _payload(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match, "no embedded chart data"
    return json.loads(match.group(1))


@pytest.mark.slow
def test_full_run_shows_every_section(full, search_result):
    run_dir, result, text, _ = full
    assert result.html_path == run_dir / "report.html"
    assert result.sections_missing == {}
    assert result.sections_present == (
        "headline",
        "estimator",
        "front:pi5",
        "evolution:pi5",
        "select",
        "accuracy",
        "compression",
        "measurement",
        "stages",
        "config",
    )
    assert text.index("<h2>Summary</h2>") < text.index("<h2>Pareto front on pi5</h2>")
    assert "4.00x faster than ref-mobilenet_v2-0.5 as fp32" in text and "deployed vs deployed" in text
    assert "1 regression(s) or missed budget(s)" in text and "a regression &lt;b&gt;named&lt;/b&gt;" in text
    assert "The search used <strong>supernet</strong>" in text and "95% interval" in text
    for e in search_result["front"]:
        assert html.escape(e["arch"]) in text  # the front table
    for needle in (
        "<h2>Pareto front on pi5</h2>",
        "<h2>Front evolution on pi5</h2>",
        "Estimated vs true accuracy",
        "prune:0.5",
        "ort-int8",
        "Test CPU",
        "ref-mobilenet_v2-0.5",
        "Reference zoo models",
        "FP32 export",
        "0.67x",
        "onnxruntime 1.20.0",
        "random",
        "&lt;script&gt;alert(&#x27;x&#x27;)",
    ):
        assert needle in text, needle
    assert "<script>alert" not in text and "<b onmouseover" not in text
    assert html.escape(EVIL) in text


@pytest.mark.slow
def test_embedded_data_holds_every_evaluation(full, search_result):
    _, _, text, _ = full
    charts = _payload(text)["charts"]
    front = charts["front-pi5"]
    assert front["kind"] == "front" and front["x"] == "latency_ms" and front["y"] == "error"
    records = front["records"]
    assert [r["arch"] for r in records] == [e["arch"] for e in search_result["evaluations"]]
    assert sum(r["front"] for r in records) == len(search_result["front"])
    assert (
        sum(not r["feasible"] for r in records)
        == search_result["num_evaluations"] - search_result["num_feasible"]
        > 0
    )
    assert sorted(n for r in records for n in r["chosen"]) == sorted([EVIL, "pi5-fastest"])
    assert {"evolution-pi5", "hypervolume-pi5", "accuracy"} <= set(charts)
    hv = [p["y"] for p in charts["hypervolume-pi5"]["series"][0]["points"]]
    assert hv == sorted(hv) and hv[-1] > 0
    assert "</script" not in text.split('id="report-data">')[1].split("</script>")[0]


@pytest.mark.slow
def test_report_is_self_contained(full):
    _, _, text, _ = full
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import|<link\b|<iframe\b", text, re.I)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


@pytest.mark.slow
def test_pngs_written_and_store_unchanged(full):
    run_dir, result, _, store_bytes = full
    names = sorted(p.name for p in result.png_paths)
    assert names == [
        "accuracy.png",
        "estimator_supernet.png",
        "evolution_pi5.png",
        "front_pi5.png",
        "measured_cpu.png",
        "measured_pi5.png",
    ]
    for p in result.png_paths:
        assert p.parent == run_dir / "figures"
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000
    assert (run_dir / "store.sqlite").read_bytes() == store_bytes
    assert result.stage_outputs()["figures"][0].startswith("figures/")
    assert ReportResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@needs_data
def test_unfinished_run_says_what_is_missing(tmp_path):
    from slimforge.search import minimize

    run_dir = make_run(tmp_path / "run", None)
    with RunStore(run_dir / "search" / "pi5" / "store.sqlite") as store:
        minimize(_problem(), "random", budget=20, seed=1, store=store)
    with RunStore(run_dir / "store.sqlite", create=False) as store:
        store.set_stage(search_stage("pi5"), "running", {"device": "pi5"})
        store.set_stage(search_stage("edge"), "failed", {"error": "device <edge> unreachable"})
    result = render_report(run_dir, png=False)
    text = result.html_path.read_text(encoding="utf-8")
    assert result.png_paths == () and not (run_dir / "figures").exists()
    assert {"front:pi5", "evolution:pi5", "stages", "config"} <= set(result.sections_present)
    assert "showing the 20 evaluations stored so far" in text
    assert len(_payload(text)["charts"]["front-pi5"]["records"]) == 20
    missing = result.sections_missing
    assert "failed" in missing["front:edge"] and "device <edge> unreachable" in missing["front:edge"]
    assert "device &lt;edge&gt; unreachable" in text
    for key in ("select", "accuracy", "compression", "measurement"):
        assert "has not run yet" in missing[key]
    assert "no summary yet" in missing["headline"]


def test_run_with_no_stage_output_yet(tmp_path):
    run_dir = make_run(tmp_path / "run", None)
    result = render_report(run_dir, png=False)
    assert result.sections_present == ("stages", "config")
    assert "no search has run yet" in result.sections_missing["front"]


@pytest.mark.slow
def test_half_finished_run_and_broken_outputs(tmp_path, search_result):
    run_dir = make_run(tmp_path / "run", search_result, upto="retrain")
    result = render_report(run_dir, png=True)
    # recorded as running, but no process holds the run directory: it was interrupted
    text = result.html_path.read_text(encoding="utf-8")
    assert 'class="status status-interrupted">interrupted' in text and "run the same command again" in text
    from slimforge.io import DirectoryLock

    with DirectoryLock(run_dir):  # a live run holds it: then it is running
        result = render_report(run_dir, png=True)
    text = result.html_path.read_text(encoding="utf-8")
    assert 'class="status status-running">running' in text and "status-interrupted" not in text.split("</style>")[1]
    assert "has not run yet" in result.sections_missing["compression"]
    assert "accuracy" in result.sections_present and (run_dir / "figures" / "accuracy.png").is_file()
    with RunStore(run_dir / "store.sqlite", create=False) as store:
        uncompressed = [{"name": EVIL, "source": "models/m0/trained", "dir": None, "report": None}]
        store.set_stage("compress", "done", {"models": uncompressed, "recipe": "none"})
    (run_dir / "search" / "pi5" / "result.json").write_text("{not json", encoding="utf-8")
    result = render_report(run_dir, png=False)
    assert "cannot read" in result.sections_missing["front:pi5"]
    assert "compression" in result.sections_present
    assert "no recipe run (recipe none)" in result.html_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("layout", ["missing", "empty", "no-store", "no-config"])
def test_not_a_run_directory_is_refused_and_nothing_written(tmp_path, capsys, layout):
    target = tmp_path / "x"
    if layout != "missing":
        target.mkdir()
    if layout == "no-store":
        (target / "config.yaml").write_text("a: 1\n")
    if layout == "no-config":
        RunStore(target / "store.sqlite").close()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidInputError, match="run directory"):
        render_report(target)
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("slimforge report: error:") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_other_layout_version_is_refused(tmp_path):
    run_dir = make_run(tmp_path / "run", None)
    with RunStore(run_dir / "store.sqlite", create=False) as store:
        store.set_meta("run", {"format_version": FORMAT_VERSION + 1, "slimforge": "9.9"})
    with pytest.raises(InvalidInputError, match="slimforge 9.9 in run format"):
        render_report(run_dir, png=False)


def test_cli_json(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", None)
    assert main(["report", str(run_dir), "--no-png", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["html_path"] == str(run_dir / "report.html") and out["png_paths"] == []
    assert "front" in out["sections_missing"]


def test_plot_fronts_draws_several_fronts_and_points(tmp_path):
    path = plot_fronts(
        {"space A": [[1.0, 9.0], [2.0, 5.0], [4.0, 3.0]], "space B": [[1.5, 8.0], [3.0, 4.0]]},
        tmp_path / "fronts.png",
        "latency (ms)",
        "error (%)",
        points={"mobilenet_v2": (3.5, 6.0)},
        scatter={"all": [[5.0, 9.5], [6.0, 7.0]]},
        title="fronts",
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInputError, match="space C"):
        plot_fronts({"space C": [1.0, 2.0, 3.0]}, tmp_path / "bad.png", "x", "y")


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


# Injected first into a copy of the report: records script errors, CSP violations and console
# errors, hovers the first plotted point, then writes what it saw into the DOM for --dump-dom.
_PROBE = """<script>
(function () {
  var log = [];
  var original = console.error;
  console.error = function () {
    log.push("console.error: " + Array.from(arguments).join(" "));
    original.apply(console, arguments);
  };
  window.addEventListener("error", function (e) { log.push("error: " + (e.message || e.target)); }, true);
  window.addEventListener("unhandledrejection", function (e) { log.push("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) { log.push("csp: " + e.blockedURI); });
  window.addEventListener("load", function () {
    var pt = document.querySelector('figure.chart[data-chart^="front"] svg .pt');
    if (pt) pt.dispatchEvent(new MouseEvent("mouseenter", { clientX: 200, clientY: 200 }));
    var tip = document.querySelector('figure.chart[data-chart^="front"] .tooltip');
    var tooltip = tip && tip.style.display === "block" ? tip.textContent : "";
    var select = document.querySelector('figure.chart[data-chart^="front"] select[data-axis="x"]'), labels = [];
    if (select) {
      select.value = "evaluation #";
      select.dispatchEvent(new Event("change"));
      labels = Array.from(select.closest("figure").querySelectorAll("svg text"), function (t) {
        return t.textContent;
      });
    }
    var out = document.createElement("pre");
    out.id = "probe";
    out.textContent = JSON.stringify({
      errors: log,
      tooltip: tooltip,
      switched: labels.indexOf("evaluation #") >= 0,
      svgs: document.querySelectorAll("figure.chart svg").length,
      points: document.querySelectorAll("figure.chart svg .pt").length,
      tables: document.querySelectorAll("section table").length,
      undrawn: document.querySelectorAll("figure.chart p.note").length
    });
    document.body.appendChild(out);
  });
})();
</script>"""


@pytest.mark.slow
def test_report_renders_in_headless_chromium(full, tmp_path, search_result):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    _, result, text, _ = full
    page = tmp_path / "probe.html"
    page.write_text(text.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    flags = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    dom = subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'profile1'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, f"no probe output; chromium said: {dom.stderr[-2000:]}"
    probe = json.loads(html.unescape(match.group(1)))
    assert probe["errors"] == []
    assert probe["switched"] and probe["undrawn"] == 0 and probe["svgs"] >= 5 and probe["tables"] >= 8
    assert probe["points"] >= search_result["num_evaluations"]
    archs = {e["arch"] for e in search_result["evaluations"]}
    assert probe["tooltip"].split("\n")[0] in archs and "latency_ms:" in probe["tooltip"]

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            *flags,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            result.html_path.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    (REPO / "artifacts").mkdir(exist_ok=True)
    shutil.copyfile(shot, REPO / "artifacts" / "report.png")
