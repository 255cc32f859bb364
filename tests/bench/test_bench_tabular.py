"""The tabular benchmark: truth, scores, bad input, and `slimforge bench tabular`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.search import minimize
from slimforge.search.algorithms._base import Algorithm
from slimforge.search.benchmark import (
    TabularBenchmark,
    load_tabular_problem,
    run_tabular_benchmark,
    score_run,
    tabular_truth,
)
from slimforge.search.indicators import normalise
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nb201"
GENOMES = list(itertools.product(range(5), repeat=6))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Complete NB201 tables with random values (and their rows, to write broken copies)."""
    rng = np.random.default_rng(2)
    root = tmp_path_factory.mktemp("bench")
    acc = [(i, SPACE.to_string(g), [rng.uniform(10, 95)]) for i, g in enumerate(GENOMES)]
    dev = [
        (i, SPACE.to_string(g), [v, 1.7 * v]) for i, g in enumerate(GENOMES) for v in [rng.uniform(0.5, 9)]
    ]
    write_arch_table(root / "acc.csv", acc, ["accuracy"])
    write_arch_table(root / "dev.csv", dev, ["latency_ms", "energy_mj"])
    return root, acc, dev


@pytest.fixture(scope="module")
def real():
    acc, dev = DATA / "accuracy_cifar10.csv", DATA / "device_pi5_onnxruntime.csv"
    if not (acc.exists() and dev.exists()):
        pytest.skip(f"reference data {DATA} is absent (see /work/shared/data/README.md)")
    problem = load_tabular_problem(acc, dev)
    return acc, dev, problem, tabular_truth(problem)


class AskList(Algorithm):
    """Asks a fixed list of genomes, then finishes."""

    name = "ask_list"

    def __init__(self, space, *, seed=0, genomes=()):
        super().__init__(space, seed=seed)
        self.genomes = list(genomes)

    def _ask(self):
        out, self.genomes = self.genomes, []
        return out

    def _tell(self, evaluations):
        pass


def test_truth_is_the_front_of_the_canonical_rows(real):
    _, _, problem, truth = real
    assert (truth.num_rows, truth.num_distinct) == (15625, 8765)
    assert all(SPACE.canonical(g) == g for g in truth.front)
    canon = [g for g in GENOMES if SPACE.canonical(g) == g]
    F = np.array([[problem.metrics(g)[o] for o in problem.objectives] for g in canon])
    front = np.array([[problem.metrics(g)[o] for o in problem.objectives] for g in truth.front])
    dominated = [(np.all(F <= f, axis=1) & np.any(F < f, axis=1)).any() for f in front]
    assert not any(dominated)
    # Nothing outside the front is non-dominated: every other canonical row is dominated by it.
    rest = [i for i, g in enumerate(canon) if g not in set(truth.front)]
    assert all((np.all(front <= F[i], axis=1) & np.any(front < F[i], axis=1)).any() for i in rest[:500])
    everything = np.array([[problem.metrics(g)[o] for o in problem.objectives] for g in GENOMES])
    norm = normalise(everything, everything.min(axis=0), everything.max(axis=0))
    assert np.allclose(truth.ref_point, np.median(norm, axis=0))


def test_finding_exactly_the_true_front_scores_perfectly(real):
    _, _, problem, truth = real
    result = minimize(
        problem, lambda space, seed: AskList(space, genomes=truth.front), budget=len(truth.front)
    )
    run = score_run(result, truth)
    assert run.hv_ratio == pytest.approx(1.0)
    assert run.front_recall == 1.0 and run.igd_plus == pytest.approx(0.0)
    assert len(run.found) == len(truth.front)


def test_benchmark_runs_and_summarises_seeds(real):
    acc, dev, problem, truth = real
    bench = run_tabular_benchmark(
        acc, dev, algorithm="pls", budget=200, seed=3, repeats=2, problem=problem, truth=truth
    )
    assert bench.seeds == (3, 4) and len(bench.runs) == 2
    hv = [r.hv_ratio for r in bench.runs]
    assert bench.summary["hv_ratio"]["min"] == min(hv) and 0 < min(hv) <= 1
    assert all(r.num_evaluations == 200 for r in bench.runs)
    assert bench.runs[0].overhead_ms_per_eval > 0
    assert "canonical" in bench.protocol
    found = np.array([[f["error"], f["latency_ms"]] for f in bench.runs[0].found])
    assert len(found) and not any(
        (np.all(found <= f, axis=1) & np.any(found < f, axis=1)).any() for f in found
    )
    assert TabularBenchmark.from_dict(json.loads(json.dumps(bench.to_dict()))) == bench


def test_budget_beyond_the_distinct_networks_is_refused(synthetic):
    root, _, _ = synthetic
    with pytest.raises(InvalidInputError, match="8,765 distinct networks"):
        run_tabular_benchmark(root / "acc.csv", root / "dev.csv", budget=9000)


def test_unknown_objective_is_refused(synthetic):
    root, _, _ = synthetic
    with pytest.raises(UnknownNameError, match="did you mean latency_ms"):
        run_tabular_benchmark(root / "acc.csv", root / "dev.csv", objectives="error,latency", budget=10)


def test_tables_that_disagree_on_indices_are_refused(synthetic, tmp_path):
    root, _, dev = synthetic
    swapped = [(i, arch, v) for (i, arch, v) in dev]
    swapped[0], swapped[1] = (0, swapped[1][1], swapped[1][2]), (1, swapped[0][1], swapped[0][2])
    write_arch_table(tmp_path / "dev.csv", swapped, ["latency_ms", "energy_mj"])
    with pytest.raises(InvalidInputError, match="disagree on index 0"):
        load_tabular_problem(root / "acc.csv", tmp_path / "dev.csv")


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda rows: rows[:-10], "has 15,615 of the 15,625 nb201 architectures"),
        (lambda rows: rows + [(0, rows[0][1], rows[0][2])], "duplicate index 0"),
        (
            lambda rows: rows[:3] + [(3, rows[3][1], ["n/a"])] + rows[4:],
            "line 5: accuracy 'n/a' is not a finite number",
        ),
    ],
)
def test_cli_reports_bad_tables_in_one_line(synthetic, tmp_path, capsys, mangle, message):
    root, acc, _ = synthetic
    bad = tmp_path / "acc.csv"
    with bad.open("w") as fh:
        fh.write("index,arch,accuracy\n")
        for i, arch, values in mangle(list(acc)):
            fh.write(f"{i},{arch},{values[0]}\n")
    code = main(
        ["bench", "tabular", "--accuracy", str(bad), "--device", f"table:{root / 'dev.csv'}", "--budget", "10"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err


def test_cli_json_output(synthetic, capsys):
    root, _, _ = synthetic
    code = main(
        [
            "bench", "tabular", "--accuracy", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}",
            "--objectives", "error,latency_ms,energy_mj", "--algorithm", "random", "--budget", "50", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["algorithm"] == "random" and out["objectives"] == ["error", "latency_ms", "energy_mj"]
    assert {"hv_ratio", "front_recall", "igd_plus", "overhead_ms_per_eval", "wall_s"} <= set(out["summary"])
    run = out["runs"][0]
    assert (
        run["num_evaluations"] == 50
        and run["found"]
        and {"arch", "error", "latency_ms", "energy_mj"} <= set(run["found"][0])
    )


@pytest.mark.slow
def test_cli_all_algorithms_prints_the_codesign_table(synthetic, capsys):
    root, _, _ = synthetic
    code = main(
        [
            "bench",
            "tabular",
            "--accuracy",
            str(root / "acc.csv"),
            "--device",
            f"table:{root / 'dev.csv'}",
            "--algorithm",
            "all",
            "--budget",
            "60",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "accuracy_%" in out and "energy_mj" in out
    for name in ("nsga2", "wsea", "cea", "random", "pls", "regularized_evolution"):
        assert f"\n{name} " in out
