"""The run summary compares deployed with deployed, and lists every regression."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimforge.report import RunSummary
from slimforge.runs import RunConfig
from slimforge.runs._context import RunContext
from slimforge.runs._outputs import (
    CompressedModel,
    CompressOutput,
    DeviceMeasurements,
    ExportedModel,
    ExportOutput,
    MeasuredFile,
    MeasureOutput,
    RetrainOutput,
    TrainedModel,
)
from slimforge.runs._summary import summarize

CONFIG = RunConfig.from_dict({"search": {"constraints": ["latency_ms <= 0.35"]}})


def _ctx(files, rounds, *, budget_met=True) -> RunContext:
    ctx = RunContext(CONFIG, Path("/tmp/run"), store=None, progress=False, log=lambda _: None)  # type: ignore[arg-type]
    trained = TrainedModel("cpu-knee", "arch", "models/cpu-knee/trained", ("cpu",), 80.0, 81.0, 80.5, "test",
                           "finetune", True, 3, 1.0)
    ctx.results["retrain"] = RetrainOutput((trained,))
    ctx.results["compress"] = CompressOutput(
        (CompressedModel("cpu-knee", "models/cpu-knee/trained", "models/cpu-knee/compressed",
                         budget_met=budget_met, message="1 of 1 stage(s) kept"),),
        recipe="quantize:int8",
    )
    ctx.results["export"] = ExportOutput(
        (ExportedModel("cpu-knee", "models/cpu-knee/model.onnx", 100, "models/cpu-knee/fp32.onnx", 400, "int8",
                       True, 80.6),)
    )
    ctx.results["measure"] = MeasureOutput(
        (DeviceMeasurements("cpu", "local-cpu", "onnxruntime, 1 thread", tuple(files), tuple(rounds)),)
    )
    return ctx


FILES = [
    MeasuredFile("cpu-knee", "deployed", "m.onnx", 0.40, 0.01, 100, 80.6),
    MeasuredFile("cpu-knee", "fp32", "f.onnx", 0.24, 0.01, 400),
    MeasuredFile("ref-a", "fp32", "a.onnx", 0.60, 0.01, 900, 79.0),
    MeasuredFile("ref-a", "int8", "a8.onnx", 0.50, 0.01, 300, 78.5),
    MeasuredFile("ref-b", "fp32", "b.onnx", 0.30, 0.01, 500, 60.0),
]
# per-round medians; the deployed/fp32 ratio is 5/3 in every round, ref-a int8 / deployed is 1.25
ROUNDS = [
    (0.40, 0.24, 0.60, 0.50, 0.30),
    (0.80, 0.48, 1.20, 1.00, 0.60),  # a round twice as slow for everyone (a load spike)
    (0.40, 0.24, 0.60, 0.50, 0.30),
]


def test_speedup_is_deployed_vs_deployed_against_the_reference_of_closest_accuracy():
    chosen = summarize(_ctx(FILES, ROUNDS)).chosen[0]
    # ref-a (79 % fp32, 78.5 % int8: within the 1-point budget) is closest to 80.6 %; it deploys as INT8,
    # its faster form; ref-b (60 %) is faster but far less accurate
    assert chosen.reference.name == "ref-a" and chosen.reference.form == "int8"
    assert chosen.speedup_vs_reference == pytest.approx(0.50 / 0.40)  # not 0.60 / 0.24 (FP32 vs FP32)
    assert chosen.latency.deployed_vs_fp32 == pytest.approx(0.40 / 0.24)


def test_a_deployed_model_slower_than_its_fp32_export_is_a_regression_with_both_figures():
    summary = summarize(_ctx(FILES, ROUNDS, budget_met=False))
    regressions = summary.chosen[0].regressions
    assert any("SLOWER than its own FP32 export: 0.400 ms vs 0.240 ms (1.67x)" in r for r in regressions)
    assert any("misses the search constraint latency_ms <= 0.35: deployed 0.400 ms" in r for r in regressions)
    assert any("accuracy budget missed" in r for r in regressions)
    text = summary.format()
    assert "slower than 0.240 ms for its own FP32 export" in text and "3 regression(s)" in text
    assert RunSummary.from_dict(summary.to_dict()) == summary  # one record behind text, JSON and report


def test_no_regression_says_so():
    files = [FILES[0].__class__(**{**FILES[0].to_dict(), "latency_ms": 0.2}), *FILES[1:]]
    rounds = [(0.2, 0.24, 0.6, 0.5, 0.3)] * 3
    summary = summarize(_ctx(files, rounds))
    assert summary.chosen[0].regressions == () and "no regression" in summary.format()
