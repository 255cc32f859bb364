"""The policy-search engine: its outline on a toy task, settings, the policy spaces, and the --auto CLI."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from slimforge.compress import PruneOptions, SearchSettings
from slimforge.compress.auto import (
    BudgetUnreachableError,
    Finished,
    LayerPolicySpace,
    PolicyTask,
    PrunePolicySpace,
    SearchSetup,
    apply_fields,
    fill_budget,
    run_task,
)
from slimforge.compress.prune import prunable_groups
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord
from slimforge.search import Constraint, Problem
from slimforge.search.evaluator import Evaluator

SHAPE = (1, 3, 8, 8)


# ---- the engine's outline on a toy task (no model): cost = sum of the gene values --------------------


class _SumSpace(LayerPolicySpace):
    name = "sum_policy"

    def _build(self, genome, num_classes):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class _SumEvaluator(Evaluator):
    def _evaluate(self, genome):  # type: ignore[no-untyped-def]
        values = [self.space.values[g] for g in genome]
        # The estimate prefers gene 0 high: the search's best is the cheapest feasible with gene 0 largest.
        return {"error": 10.0 - values[0], "bytes": float(sum(values))}


@dataclass(frozen=True)
class _Record(JsonRecord):
    done: bool = True


class _SumTask(PolicyTask):
    result_name = "toy"
    budget_keys = ("bytes",)
    what = "the toy search"

    def __init__(self) -> None:
        self.finished: list = []

    def _setup(self, budget, settings):  # type: ignore[no-untyped-def]
        space = _SumSpace(["a", "b", "c"], (0.0, 1.0, 2.0, 3.0))
        problem = Problem(
            space,
            ("error", "bytes"),
            [_SumEvaluator(space, ("error", "bytes"))],
            [Constraint("bytes", "<=", budget.value)],
        )
        return SearchSetup(problem, "bytes", budget.value, 9.0, (0, 0, 0), 0.0, "every gene at 0", space)

    def fill(self, setup, genome):  # type: ignore[no-untyped-def]
        space = setup.context
        return fill_budget(
            genome,
            space.num_choices,
            lambda g: float(sum(space.values[i] for i in g)),
            setup.bound,
            [2, 1, 0],
            direction=1,
        )

    def _finish(self, setup, found, settings):  # type: ignore[no-untyped-def]
        self.finished.append(found)
        return Finished(_Record())

    def format(self, record):  # type: ignore[no-untyped-def]
        return "toy"


def test_engine_searches_fills_to_the_budget_and_counts_only_the_search():
    task = _SumTask()
    run_task(task, "bytes=5", SearchSettings(search_budget=12, seed=0, noise_repeats=0))
    (found,) = task.finished
    assert found.num_evaluations == 12 and found.searches["policy"].num_evaluations == 12
    # Filled: within the bound, and no single step of any gene fits any more.
    assert found.fill is not None and found.chosen.metrics["bytes"] == found.fill.cost_after == 5.0
    assert found.noise is None


def test_engine_reranks_the_best_filled_candidates_by_the_second_estimate():
    class Reranking(_SumTask):
        def score(self, setup, genome, estimate):  # type: ignore[no-untyped-def]
            return -float(genome[0])  # the second estimate prefers gene 0 low, the search's high

    task = Reranking()
    run_task(task, "bytes=5", SearchSettings(search_budget=12, seed=0, noise_repeats=0, rerank=3, fill=False))
    (found,) = task.finished
    assert len(found.reranked) == 3 and found.fill is None
    best = max(found.reranked, key=lambda r: r.rerank_estimate_pct)
    assert found.chosen.arch == best.policy
    # The pool is the search's best three by its own estimate.
    errors = sorted(e.metrics["error"] for e in found.searches["policy"].evaluations if e.feasible)[:3]
    assert sorted(100.0 - r.search_estimate_pct for r in found.reranked) == errors


def test_engine_refuses_an_unreachable_budget_before_searching():
    class Costly(_SumTask):
        def _setup(self, budget, settings):  # type: ignore[no-untyped-def]
            setup = super()._setup(budget, settings)
            return SearchSetup(
                setup.problem, "bytes", budget.value, 9.0, (0, 0, 0), 2.0, "every gene at 0", None
            )

    task = Costly()
    with pytest.raises(
        BudgetUnreachableError,
        match=r"every gene at 0 has bytes 2 > 1; the smallest reachable budget is bytes=2$",
    ):
        run_task(task, "bytes=1", SearchSettings(search_budget=4))
    assert task.finished == []


def test_settings_take_any_field_of_their_records_and_name_the_others():
    settings, options = apply_fields(
        {"seed": 3, "criterion": "l2"}, SearchSettings(), PruneOptions(), what="auto_prune"
    )
    assert settings.seed == 3 and options.criterion == "l2"
    with pytest.raises(InvalidInputError, match="auto_prune takes no setting 'sed'; its settings: .*seed"):
        apply_fields({"sed": 3}, SearchSettings(), PruneOptions(), what="auto_prune")
    with pytest.raises(InvalidInputError, match="search budget"):
        SearchSettings(search_budget=0)
    assert SearchSettings(estimate=None).estimate == SearchSettings().estimate
    assert SearchSettings.from_json(SearchSettings(seed=2).to_json()) == SearchSettings(seed=2)


def test_search_settings_scale_the_population_to_the_budget():
    from slimforge.compress.auto import search_settings

    nsga2 = search_settings("nsga2", 40)
    assert nsga2["pop_size"] == 10 and nsga2["iterations"] is None
    assert nsga2["n_crossover"] + nsga2["n_mutation"] + nsga2["n_random"] == 10
    assert search_settings("random", 40) == {"batch_size": 5}
    assert search_settings("nsga2", 8, {"pop_size": 6})["pop_size"] == 6


def test_prune_policy_space_has_one_gene_per_prunable_group(resnet):
    model = resnet()
    groups, skipped, ignored = prunable_groups(model, SHAPE)
    space = PrunePolicySpace(model, SHAPE, groups, ignored=ignored)
    assert space.num_choices == [9] * len(groups) == [9] * 12
    assert groups[0] == "stem.0" and [s.layer for s in skipped] == ["classifier"]
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    assert space.from_string(space.to_string(g)) == g
    assert space.validate(space.crossover(g, space.mutate(g, rng, 0.5), rng))
    with pytest.raises(InvalidInputError, match="no weight-sharing supernet"):
        space.supernet(10)


# ---- CLI --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--auto", "prune", "--budget", "macs=2", "--out", "OUT"], "macs must be in (0, 1]"),
        (["--auto", "prune", "--budget", "speed=2", "--out", "OUT"], "unknown budget key 'speed'"),
        (["--auto", "prune", "--budget", "latency_ms=fast", "--out", "OUT"], "not a finite number"),
        (["--auto", "bits", "--budget", "macs=0.5", "--out", "OUT"], "does not take 'macs'"),
        (["--auto", "shrink", "--budget", "macs=0.5", "--out", "OUT"], "unknown --auto 'shrink'"),
        (["--auto", "prune", "--out", "OUT"], "needs --budget"),
        (
            ["--auto", "prune", "--budget", "macs=0.5", "--out", "OUT", "--algorithm", "nsga3"],
            "did you mean nsga2",
        ),
        (["--auto", "prune", "--budget", "macs=0.5"], "needs --out"),
        (
            ["--auto", "prune", "--budget", "macs=0.5", "--out", "OUT", "--search-budget", "0"],
            "--search-budget",
        ),
        (["--auto", "bits", "--budget", "bits=4", "--out", "OUT", "--bit-choices", "2,x"], "--bit-choices"),
        (["--auto", "prune", "--budget", "0.7", "--out", "OUT", "--estimate", "bnn"], "did you mean bn"),
        (["--auto", "bits", "--budget", "4", "--out", "OUT"], "size must be in (0, 1]"),
        (
            ["--auto", "bits", "--budget", "bits=4", "--out", "OUT", "--audit-estimates", "20"],
            "use it with --auto prune",
        ),
    ],
)
def test_cli_bad_auto_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    from slimforge.cli import main

    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    before = torch.get_num_threads()
    try:
        assert main(["compress", "resnet20", "--width", "0.25", *argv]) == 2
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_cli_auto_prune_writes_policy_front_and_comparison(capsys, tmp_path):
    from slimforge.cli import main

    out = tmp_path / "amc"
    argv = [
        "compress",
        "resnet20",
        "--width",
        "0.25",
        "--data",
        "digits",
        "--auto",
        "prune",
        "--budget",
        "macs=0.5",
        "--search-budget",
        "4",
        "--finetune-epochs",
        "0",
        "--recal",
        "16",
        "--no-latency",
        "--out",
        str(out),
        "--json",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget"] == "macs=0.5" and doc["rows"][1]["within_budget"] and doc["front"]
    written = {p.name for p in out.iterdir()}
    assert written >= {"auto_prune.json", "auto_prune.txt", "searches.json", "searched"}


@pytest.mark.slow
def test_cli_unreachable_budget_is_one_line_naming_the_smallest_reachable_and_exit_2(capsys, tmp_path):
    from slimforge.cli import main

    argv = [
        "compress",
        "resnet20",
        "--width",
        "0.25",
        "--data",
        "digits",
        "--auto",
        "prune",
        "--budget",
        "macs=0.01",
        "--out",
        str(tmp_path / "out"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the smallest reachable budget is macs=0." in err
    assert not (tmp_path / "out").exists()
