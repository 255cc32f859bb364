"""Problems, constraints, evaluators and architecture tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.search import EVALUATORS, Constraint, Problem, build_problem, make_evaluator
from slimforge.search.evaluator import Evaluator
from slimforge.search.tables import read_arch_table, write_arch_table
from slimforge.spaces import get_space

SPACE = get_space("nb201")
GENOMES = list(itertools.product(range(5), repeat=6))


class LinearCost(Evaluator):
    """A toy evaluator: latency grows with the op indices, error falls with them."""

    def __init__(self, space):
        super().__init__(space, ("error", "latency_ms"))

    def _evaluate(self, genome):
        return {"error": 50.0 - sum(genome), "latency_ms": 1.0 + 0.5 * sum(genome)}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    rng = np.random.default_rng(0)
    acc = rng.uniform(10, 95, len(GENOMES))
    lat = rng.uniform(0.5, 10, len(GENOMES))
    root = tmp_path_factory.mktemp("tables")
    rows = [(i, SPACE.to_string(g), [acc[i]]) for i, g in enumerate(GENOMES)]
    write_arch_table(root / "acc.csv", rows, ["accuracy"])
    rows = [(i, SPACE.to_string(g), [lat[i], 2 * lat[i]]) for i, g in enumerate(GENOMES)]
    write_arch_table(root / "dev.csv", rows, ["latency_ms", "energy_mj"])
    return root, acc, lat


# ------------------------------------------------------------------ constraints
@pytest.mark.parametrize(
    "text, metric, op, bound",
    [
        ("latency_ms <= 5", "latency_ms", "<=", 5.0),
        ("num_params<=1e6", "num_params", "<=", 1e6),
        ("accuracy>=90", "accuracy", ">=", 90.0),
    ],
)
def test_constraint_parses(text, metric, op, bound):
    c = Constraint.parse(text)
    assert (c.metric, c.op, c.bound) == (metric, op, bound)
    assert Constraint.parse(str(c)) == c


def test_constraint_violation_is_relative_to_the_bound():
    c = Constraint.parse("latency_ms <= 5")
    assert c.violation(4.0) == 0.0 and c.violation(5.0) == 0.0
    assert c.violation(7.5) == pytest.approx(0.5)
    assert Constraint.parse("accuracy >= 90").violation(81.0) == pytest.approx(0.1)
    assert math.isinf(c.violation(float("nan")))


@pytest.mark.parametrize(
    "text, match",
    [("latency_ms < 5", "use <= or >="), ("latency <= fast", "not a finite"), ("5 >= x", "cannot read")],
)
def test_bad_constraints_say_how_to_write_them(text, match):
    with pytest.raises(InvalidInputError, match=match):
        Constraint.parse(text)


# --------------------------------------------------------------------- problems
def test_problem_evaluates_objectives_constraints_and_feasibility():
    problem = Problem(SPACE, ["error", "latency_ms"], [LinearCost(SPACE)], ["latency_ms <= 5"])
    ok = problem.evaluate((1, 1, 1, 1, 1, 1))
    assert ok.objectives == {"error": 44.0, "latency_ms": 4.0}
    assert ok.constraints == {"latency_ms <= 5": 4.0}
    assert ok.feasible and ok.violation == 0.0
    assert ok.arch == SPACE.to_string((1, 1, 1, 1, 1, 1))
    bad = problem.evaluate((4, 4, 4, 4, 4, 4))
    assert not bad.feasible and bad.violation == pytest.approx((13.0 - 5.0) / 5.0)
    assert bad.vector == (26.0, 13.0)


def test_unknown_objective_names_the_available_metrics():
    with pytest.raises(UnknownNameError, match="did you mean latency_ms"):
        Problem(SPACE, ["error", "latency"], [LinearCost(SPACE)])
    with pytest.raises(UnknownNameError, match="constraint"):
        Problem(SPACE, ["error"], [LinearCost(SPACE)], ["energy_mj <= 3"])
    with pytest.raises(InvalidInputError, match="twice"):
        Problem(SPACE, ["error", "error"], [LinearCost(SPACE)])


def test_only_needed_evaluators_run():
    calls = []

    class Spy(LinearCost):
        def _evaluate(self, genome):
            calls.append(genome)
            return {"energy_mj": 1.0, "error": 0.0, "latency_ms": 0.0}

    spy = Spy(SPACE)
    spy.metrics = ("energy_mj",)
    Problem(SPACE, ["error"], [LinearCost(SPACE), spy]).evaluate((0,) * 6)
    assert calls == []


def test_build_problem_from_tables(tables):
    root, acc, lat = tables
    problem = build_problem(
        "nb201",
        "error,latency_ms,energy_mj",
        accuracy_table=root / "acc.csv",
        device=f"table:{root / 'dev.csv'}",
    )
    g = GENOMES[123]
    e = problem.evaluate(g)
    assert e.objectives["error"] == pytest.approx(100 - acc[123])
    assert e.objectives["latency_ms"] == pytest.approx(lat[123])
    assert e.objectives["energy_mj"] == pytest.approx(2 * lat[123])
    assert e.metrics["accuracy"] == pytest.approx(acc[123])


def test_build_problem_explains_missing_sources(tables):
    root, _, _ = tables
    with pytest.raises(InvalidInputError, match="--accuracy-table"):
        build_problem("nb201", "error,latency_ms", device=f"table:{root / 'dev.csv'}")
    with pytest.raises(InvalidInputError, match="--device table:FILE"):
        build_problem("nb201", "error,latency_ms", accuracy_table=root / "acc.csv")
    with pytest.raises(UnknownNameError, match="table:FILE"):
        build_problem("nb201", "latency_ms", device="pi5")
    with pytest.raises(UnknownNameError, match="did you mean energy_mj"):
        build_problem("nb201", "error,energy", accuracy_table=root / "acc.csv")


def test_num_params_evaluator_counts_the_built_network():
    ev = make_evaluator("num_params", SPACE, num_classes=10)
    g = (3, 3, 3, 3, 3, 3)
    expected = sum(p.numel() for p in SPACE.build(g, 10).parameters())
    assert ev.evaluate(g) == {"num_params": float(expected)}
    assert set(EVALUATORS.list()) >= {"accuracy_table", "device_table", "num_params"}


# ----------------------------------------------------------------------- tables
def test_table_round_trip(tables):
    root, acc, _ = tables
    table = read_arch_table(root / "acc.csv", SPACE, ["accuracy"])
    assert len(table.rows) == 15625
    assert table.values(GENOMES[7]) == {"accuracy": pytest.approx(acc[7])}


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_table_errors_name_the_line_and_the_fix(tmp_path, tables):
    root, _, _ = tables
    good = (root / "acc.csv").read_text().splitlines()
    cases = {
        "missing": (good[:-3], "has 15,622 of the 15,625"),
        "dup_index": (good + [good[1]], "duplicate index 0"),
        "dup_arch": (good + ["99999," + good[1].split(",", 1)[1]], "appears twice"),
        "non_numeric": (
            good[:5] + [good[5].rsplit(",", 1)[0] + ",abc"] + good[6:],
            "line 6: accuracy 'abc' is not a finite number",
        ),
        "bad_arch": (good[:3] + ["2,|conv~0|,90"] + good[4:], "line 4"),
        "no_column": (["index,arch,acc"] + good[1:], "lacks column"),
        "bad_index": (good[:2] + ["x" + good[2]] + good[3:], "index 'x"),
    }
    for name, (lines, match) in cases.items():
        path = _write(tmp_path / f"{name}.csv", lines)
        with pytest.raises(InvalidInputError, match=match):
            read_arch_table(path, SPACE, ["accuracy"], what="accuracy table")
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_arch_table(tmp_path / "absent.csv", SPACE, ["accuracy"])
