"""`slimforge bench codesign`: representative rules, the proxy store, the config, a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.bench import CodesignConfig, CodesignResult, StoredEvaluator, representative, run_codesign
from slimforge.search import Evaluation, Evaluator, SearchResult, feasible_front, knee_point
from slimforge.spaces import get_space

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
NB201 = SHARED / "nb201"
SPACE = get_space("nb201")


def _evaluation(genome, error, latency, energy):
    return Evaluation(
        genome=tuple(genome),
        arch=SPACE.to_string(genome),
        objectives={"error": error, "latency_ms": latency, "energy_mj": energy},
        metrics={"error": error, "accuracy": 100 - error, "latency_ms": latency, "energy_mj": energy},
    )


def _result(evaluations):
    return SearchResult(
        space="nb201",
        objectives=("error", "latency_ms", "energy_mj"),
        constraints=(),
        algorithm="x",
        settings={},
        seed=0,
        budget=len(evaluations),
        evaluations=tuple(evaluations),
        front=tuple(feasible_front(evaluations)),
        stop_reason="budget",
    )


EVALS = [
    _evaluation((0, 0, 0, 0, 0, 1), 90.0, 0.1, 0.1),  # tiny and useless
    _evaluation((3, 3, 3, 3, 3, 3), 6.0, 9.0, 12.0),  # accurate and slow
    _evaluation((2, 2, 2, 2, 2, 2), 12.0, 2.0, 3.0),  # the middle
    _evaluation((1, 2, 3, 1, 2, 3), 20.0, 4.0, 5.0),  # dominated
]


def test_wsea_reports_its_best_weighted_sum_with_its_own_calibration():
    algo = SimpleNamespace(mean=np.array([50.0, 3.0, 4.0]), std=np.array([40.0, 3.0, 4.0]))
    chosen, rule = representative("wsea", _result(EVALS), algo)
    F = np.array([e.vector for e in EVALS])
    assert chosen is EVALS[int(np.argmin(((F - algo.mean) / algo.std).mean(axis=1)))]
    assert "weighted sum" in rule


def test_cea_reports_the_most_accurate_within_its_epsilons():
    algo = SimpleNamespace(epsilon=np.array([5.0, 6.0]))
    chosen, _ = representative("cea", _result(EVALS), algo)
    assert chosen is EVALS[2]  # the slow accurate one breaks the latency bound
    nothing_fits = SimpleNamespace(epsilon=np.array([0.01, 0.01]))
    chosen, rule = representative("cea", _result(EVALS[1:3]), nothing_fits)
    assert chosen is EVALS[2] and "least excess" in rule


@pytest.mark.parametrize("name", ["nsga2", "random"])
def test_other_algorithms_report_their_knee_point(name):
    chosen, rule = representative(name, _result(EVALS), None)
    assert chosen is knee_point(_result(EVALS)) and "knee" in rule


class _Counting(Evaluator):
    def __init__(self, space, offset=0.0):
        super().__init__(space, ("error", "accuracy"))
        self.calls = 0
        self.offset = offset

    def _evaluate(self, genome):
        self.calls += 1
        return {"error": float(sum(genome)) + self.offset, "accuracy": 100.0 - sum(genome)}

    def describe(self):
        return {**super().describe(), "offset": self.offset, "checkpoint": "/anywhere"}


def test_stored_evaluator_evaluates_each_architecture_once_across_instances(tmp_path):
    inner = _Counting(SPACE)
    stored = StoredEvaluator(inner, tmp_path / "proxy.sqlite", ignore=("checkpoint",))
    genomes = [(0, 1, 2, 3, 4, 0), (1, 1, 1, 1, 1, 1)]
    first = stored.evaluate_many(genomes)
    assert stored.evaluate_many(genomes[::-1]) == first[::-1] and inner.calls == 2
    stored.close()
    again = StoredEvaluator(_Counting(SPACE), tmp_path / "proxy.sqlite", ignore=("checkpoint",))
    assert again.evaluate(genomes[0]) == first[0] and again.inner.calls == 0
    assert again.stored()[0][0] == genomes[0]
    again.close()
    other = StoredEvaluator(_Counting(SPACE, offset=1.0), tmp_path / "proxy.sqlite", ignore=("checkpoint",))
    with pytest.raises(InvalidInputError, match="other settings"):
        other.evaluate(genomes[0])


def test_config_presets_overrides_and_bad_values():
    study = CodesignConfig.from_preset("study", epochs=3)
    got = (study.epochs, study.cells_per_stage, study.num_calibration, study.eval_images)
    assert got == (3, 5, 1000, None)
    assert CodesignConfig.from_preset("cpu", eval_images=0).eval_images is None
    assert CodesignConfig.from_dict(study.to_dict()) == study
    with pytest.raises(UnknownNameError, match="did you mean"):
        CodesignConfig(methods=("gdas", "gdsa"))
    with pytest.raises(InvalidInputError, match="not among the trained"):
        CodesignConfig(methods=("gdas",), search_on=("spos",))
    with pytest.raises(UnknownNameError, match="preset"):
        CodesignConfig.from_preset("gpu")
    with pytest.raises(InvalidInputError, match="val_fraction"):
        CodesignConfig(val_fraction=1.0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """48 training and 16 test images of the CIFAR-10 subset, and the settings of a seconds-long run."""
    if not ((SHARED / "cifar10_subset.npz").exists() and (NB201 / "accuracy_cifar10.csv").exists()):
        pytest.skip(f"reference data {SHARED} is absent (see /work/shared/data/README.md)")
    root = tmp_path_factory.mktemp("codesign")
    data = np.load(SHARED / "cifar10_subset.npz")
    np.savez(
        root / "tiny.npz",
        x_train=data["x_train"][:48],
        y_train=data["y_train"][:48],
        x_test=data["x_test"][:16],
        y_test=data["y_test"][:16],
    )
    config = CodesignConfig(
        data=f"npz:{root / 'tiny.npz'}",
        accuracy_table=str(NB201 / "accuracy_cifar10.csv"),
        device_tables=(str(NB201 / "device_pi5_onnxruntime.csv"),),
        epochs=1,
        channels=4,
        cells_per_stage=1,
        pop_size=8,
        iterations=1,
        num_calibration=10,
        eval_images=8,
        bn_images=8,
        batch_size=8,
        train_device="cpu",
    )
    return root, config


def _table(path, column):
    with open(path, encoding="utf-8") as fh:
        next(fh)
        return {line.split(",")[1]: float(line.rstrip("\n").split(",")[column]) for line in fh}


@pytest.mark.slow
def test_end_to_end_table_truth_resume_and_cli(tiny, capsys):
    root, config = tiny
    out = root / "run"
    result = run_codesign(config, out)
    names = [r.name for r in result.rows]
    searched = [f"{m}+{a}" for m in ("GDAS", "SPOS") for a in ("WSEA", "CEA", "NSGA")]
    assert names == ["DARTS", "RSPS", "GDAS", *searched]
    accuracy = _table(NB201 / "accuracy_cifar10.csv", 2)
    latency = _table(NB201 / "device_pi5_onnxruntime.csv", 2)
    for row in result.rows:
        assert row.arch is not None and row.device == "pi5_onnxruntime"
        assert row.accuracy_pct == pytest.approx(accuracy[row.arch])  # TRUE accuracy, not the proxy
        assert row.latency_ms == pytest.approx(latency[row.arch])
        assert (row.algorithm is None) == (row.num_evaluations is None)
    budgets = {s["algorithm"]: s["budget"] for s in result.searches}
    assert budgets == {"wsea": 10 + 50, "cea": 10 + 50, "nsga2": 8 + 50}  # initial sample + 1 generation
    pairs = {(g["supernet"], g["device"]) for g in result.proxy_vs_true}
    assert pairs == {("gdas", "pi5_onnxruntime"), ("spos", "pi5_onnxruntime")}
    for gap in result.proxy_vs_true:
        lat = [f["latency_ms"] for f in gap["front"]]
        assert lat == sorted(lat) and gap["front"]
    saved = json.loads((out / "codesign.json").read_text())
    assert CodesignResult.from_dict(saved).rows == result.rows
    assert (out / "proxy_vs_true_pi5_onnxruntime.png").stat().st_size > 0
    assert "GDAS+NSGA" in (out / "codesign_table.md").read_text()

    # The same command through the CLI resumes: nothing is trained or evaluated again.
    argv = [
        "bench", "codesign", "--out", str(out), "--data", config.data,
        "--accuracy-table", config.accuracy_table, "--device-table", config.device_tables[0],
        "--epochs", "1", "--channels", "4", "--cells", "1", "--pop-size", "8", "--iterations", "1",
        "--calibration", "10", "--eval-images", "8", "--bn-images", "8", "--batch-size", "8",
        "--train-device", "cpu", "--no-progress", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in again["rows"]] == [r.arch for r in result.rows]
    assert all(s["proxy_evaluations_computed"] == 0 for s in again["searches"])
    assert all(s["resumed_from_step"] == s["total_steps"] for s in again["supernets"].values())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--accuracy-table", "/nonexistent/acc.csv"], "does not exist"),
        (["--methods", "darts,gdsa"], "unknown supernet method 'gdsa'"),
        (["--algorithms", "nsga"], "unknown search algorithm"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    assert main(["bench", "codesign", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
