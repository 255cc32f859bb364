"""The tabular harness for the second wave: checkpoints, notes, and refusals before any evaluation."""

from __future__ import annotations

import importlib.util
import itertools
import json

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError
from slimforge.search import minimize
from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, score_run, tabular_truth
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("bench21")
    genomes = list(itertools.product(range(5), repeat=6))
    acc = [(i, SPACE.to_string(g), [rng.uniform(10, 95)]) for i, g in enumerate(genomes)]
    dev = [(i, SPACE.to_string(g), [rng.uniform(0.7, 9), rng.uniform(1, 20)]) for i, g in enumerate(genomes)]
    write_arch_table(root / "acc.csv", acc, ["accuracy"])
    write_arch_table(root / "dev.csv", dev, ["latency_ms", "energy_mj"])
    problem = load_tabular_problem(root / "acc.csv", root / "dev.csv")
    return root, problem, tabular_truth(problem), min(v[0] for _, _, v in dev)


def test_truth_knows_every_metric_minimum(tables):
    _, _, truth, cheapest = tables
    assert truth.metric_lower["latency_ms"] == pytest.approx(cheapest)
    assert {"error", "accuracy", "latency_ms", "energy_mj"} <= set(truth.metric_lower)


def test_a_checkpoint_scores_exactly_what_a_run_with_that_budget_scores(tables):
    _, problem, truth, _ = tables
    long = score_run(minimize(problem, "pls", budget=120, seed=4), truth, checkpoints=[60])
    short = score_run(minimize(problem, "pls", budget=60, seed=4), truth)
    assert long.hv_ratio_at[60] == pytest.approx(short.hv_ratio)
    assert long.hv_ratio >= long.hv_ratio_at[60]


def test_benchmark_summarises_checkpoints_and_round_trips(tables):
    _, problem, truth, _ = tables
    res = run_tabular_benchmark(
        None,
        None,
        algorithm="random",
        budget=50,
        repeats=2,
        problem=problem,
        truth=truth,
        checkpoints=[20, 50],
    )
    assert set(res.runs[0].hv_ratio_at) == {20, 50}
    assert res.summary["hv_ratio@50"]["median"] == pytest.approx(res.summary["hv_ratio"]["median"])
    back = type(res).from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.runs[0].hv_ratio_at == res.runs[0].hv_ratio_at
    with pytest.raises(InvalidInputError, match="checkpoint 80"):
        run_tabular_benchmark(
            None, None, algorithm="random", budget=50, problem=problem, truth=truth, checkpoints=[80]
        )


def test_calibrating_baselines_say_when_the_calibration_eats_the_budget(tables):
    _, problem, truth, _ = tables
    res = run_tabular_benchmark(None, None, algorithm="wsea", budget=100, problem=problem, truth=truth)
    assert len(res.notes) == 1 and "consumes the whole budget of 100" in res.notes[0]
    assert "random search" in res.notes[0]
    small = run_tabular_benchmark(
        None, None, algorithm="cea", budget=100, problem=problem, truth=truth,
        settings={"num_calibration": 30, "iterations": None},
    )  # fmt: skip
    assert small.notes == ()


def test_cli_prints_the_calibration_note_and_checkpoint_columns(tables, capsys):
    root, *_ = tables
    args = ["bench", "tabular", "--accuracy", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}"]
    assert main([*args, "--algorithm", "cea", "--budget", "60", "--checkpoints", "30"]) == 0
    out = capsys.readouterr().out
    assert "hv_ratio@30" in out and "note: cea: the study's calibration sample of 1,000" in out


def test_cli_refuses_a_target_below_the_cheapest_network_in_one_line(tables, capsys):
    root, _, _, cheapest = tables
    assert cheapest > 0.1
    args = ["bench", "tabular", "--accuracy", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}"]
    code = main([*args, "--algorithm", "rl", "--budget", "30", "--set", "target_latency=0.1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "target_latency 0.1 is below the cheapest network's latency_ms" in err


@pytest.mark.parametrize("bad", ["w=-1", "w=0.2"])
def test_cli_refuses_w_outside_minus_one_to_zero_in_one_line(tables, capsys, bad):
    root, *_ = tables
    args = ["bench", "tabular", "--accuracy", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}"]
    code = main([*args, "--algorithm", "rl", "--budget", "30", "--set", bad])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "outside (-1, 0]" in err


@pytest.mark.skipif(
    importlib.util.find_spec("botorch") is None, reason="bo needs pip install 'slimforge[bo]'"
)
def test_cli_refuses_a_bo_budget_below_its_initial_design_in_one_line(tables, capsys):
    root, *_ = tables
    args = ["bench", "tabular", "--accuracy", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}"]
    code = main([*args, "--algorithm", "bo", "--budget", "10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "budget 10 is below the BO initial design of n_init=20" in err
