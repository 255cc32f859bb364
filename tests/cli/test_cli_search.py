"""`slimforge search`: front table, JSON, run directory, resume, and one-line errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.io import RunStore
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    rng = np.random.default_rng(4)
    root = tmp_path_factory.mktemp("search")
    genomes = list(itertools.product(range(5), repeat=6))
    write_arch_table(
        root / "acc.csv",
        [(i, SPACE.to_string(g), [rng.uniform(40, 95)]) for i, g in enumerate(genomes)],
        ["accuracy"],
    )
    write_arch_table(
        root / "dev.csv",
        [(i, SPACE.to_string(g), [rng.uniform(1, 9), 3.0]) for i, g in enumerate(genomes)],
        ["latency_ms", "energy_mj"],
    )
    return root


def _args(root, *extra):
    return [
        "search", "--space", "nb201", "--objectives", "error,latency_ms",
        "--accuracy-table", str(root / "acc.csv"), "--device", f"table:{root / 'dev.csv'}", "--no-progress", *extra,
    ]  # fmt: skip


def test_search_prints_the_front_and_fills_the_run_directory(tables, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        _args(
            tables,
            "--algorithm",
            "pls",
            "--budget",
            "80",
            "--seed",
            "1",
            "--constraint",
            "latency_ms<=6",
            "--out",
            str(out),
        )
    )
    text = capsys.readouterr().out
    assert code == 0
    assert text.splitlines()[0].split() == ["#", "error", "latency_ms", "arch"]
    assert "* knee point" in text
    saved = json.loads((out / "result.json").read_text())
    assert saved["num_evaluations"] == 80 and saved["constraints"] == ["latency_ms <= 6"]
    assert all(f["objectives"]["latency_ms"] <= 6 for f in saved["front"])
    with RunStore(out / "store.sqlite", create=False) as store:
        assert len(store) == 80
        assert store.get_stage("search").status == "done"


@pytest.mark.slow
def test_search_json_and_resume_to_a_larger_budget(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(tables, "--budget", "60", "--out", str(out), "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["num_evaluations"] == 60 and first["algorithm"] == "auto" and "evaluations" not in first
    # Without --resume the run directory is refused, untouched.
    assert main(_args(tables, "--budget", "60", "--out", str(out))) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(_args(tables, "--budget", "90", "--out", str(out), "--resume", "--json")) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["num_evaluations"] == 90 and resumed["num_resumed"] == 60
    assert main(_args(tables, "--budget", "90", "--json")) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert resumed["front"] == [
        {**f, "seconds": r["seconds"]} for f, r in zip(fresh["front"], resumed["front"])
    ]


def test_unsatisfiable_constraint_says_so(tables, capsys):
    code = main(_args(tables, "--budget", "40", "--constraint", "latency_ms<=0.1"))
    captured = capsys.readouterr()
    assert code == 0
    assert "no feasible architecture found after 40 evaluations" in captured.out
    assert "no feasible architecture found after 40 evaluations" in captured.err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--objectives", "error,latency"], "did you mean latency_ms"),
        (["--algorithm", "nsga3"], "unknown search algorithm 'nsga3'"),
        (["--resume"], "--resume needs --out"),
        (["--budget", "20000"], "budget 20,000 exceeds"),
        (["--constraint", "latency_ms < 5"], "use <= or >="),
        (["--set", "pop=3"], "has no setting 'pop'"),
        (["--executor", "threads"], "unknown executor 'threads'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tables, capsys, extra, message):
    code = main(_args(tables, "--budget", "20", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
