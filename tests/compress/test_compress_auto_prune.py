"""The pruning policy search: evaluation, the uniform baseline, the sensitivity prior, filling, noise."""

from __future__ import annotations

import json
import re

import pytest

from slimforge.compress import auto_prune
from slimforge.compress.auto import (
    BudgetUnreachableError,
    EstimateData,
    PrunePolicyEvaluator,
    PrunePolicySpace,
)
from slimforge.compress.prune import apply_prune_policy, prunable_groups
from slimforge.errors import InvalidInputError
from slimforge.hardware import count_macs
from slimforge.io import load_model

SHAPE = (1, 3, 8, 8)


@pytest.mark.slow
def test_applied_policy_changes_macs_exactly_as_evaluated(splits, resnet, cheap):
    model = resnet()
    groups, _, ignored = prunable_groups(model, SHAPE)
    space = PrunePolicySpace(model, SHAPE, groups, ignored=ignored)
    evaluator = PrunePolicyEvaluator(space, EstimateData.from_splits(splits, cheap, 0), cheap)
    policy = dict.fromkeys(groups, 0.0) | {"stages.4.conv1.0": 0.5, "stem.0": 0.5}
    genome = space.genome_of(policy)
    metrics = evaluator.evaluate(genome)
    pruned = space.build(genome, 10)
    assert metrics["macs"] == count_macs(pruned, SHAPE) < count_macs(model, SHAPE)
    assert pruned.stages[4].conv1[0].out_channels == model.stages[4].conv1[0].out_channels // 2
    assert pruned.stem[0].out_channels == model.stem[0].out_channels // 2
    # A group at ratio 0 is untouched.
    assert pruned.stages[5].conv1[0].out_channels == model.stages[5].conv1[0].out_channels
    assert count_macs(space.build(space.genome_of(0.0), 10), SHAPE) == count_macs(model, SHAPE)
    assert metrics["bytes"] == 4 * sum(p.numel() for p in pruned.parameters())
    assert 0 <= metrics["accuracy"] <= 100 and metrics["error"] == 100 - metrics["accuracy"]


@pytest.fixture
def run_prune(splits, resnet, resnet_config, cheap):
    """auto_prune on the quarter-width ResNet-20 with a small search and no finetune."""

    def run(budget="macs=0.5", out=None, **kwargs):  # type: ignore[no-untyped-def]
        options = {
            "model_config": resnet_config,
            "search_budget": 6,
            "finetune_epochs": 0,
            "measure_latency": False,
            "estimate": cheap,
            "seed": 0,
            **kwargs,
        }
        return auto_prune(resnet(), splits, budget, out, **options)

    return run


@pytest.mark.slow
def test_auto_prune_meets_the_budget_is_deterministic_and_saves_reloadable_models(
    run_prune, tmp_path, resnet
):
    first = run_prune(out=tmp_path / "run")
    again = run_prune()
    assert first.budget_met and first.rows[1].within_budget and first.rows[1].cost <= first.budget_bound
    assert first.budget_bound == 0.5 * first.reference["macs"]
    assert first.policy == again.policy and first.front == again.front
    assert first.num_evaluations == 6 and first.front
    # The uniform baseline meets the same budget with the smallest ratio that does.
    uniform = first.rows[2]
    assert uniform.within_budget and uniform.name == f"uniform {first.uniform_ratio:g}"
    model = resnet()
    groups, _, ignored = prunable_groups(model, SHAPE)
    apply_prune_policy(model, SHAPE, dict.fromkeys(groups, first.uniform_ratio - 0.02), ignored=ignored)
    assert count_macs(model, SHAPE) > first.budget_bound
    doc = json.loads((tmp_path / "run" / "auto_prune.json").read_text())
    assert doc["policy"] == first.policy and type(first).from_dict(doc) == first
    assert set(json.loads((tmp_path / "run" / "searches.json").read_text())) == {"policy"}
    reloaded = load_model(tmp_path / "run" / "searched")
    assert count_macs(reloaded, SHAPE) == first.rows[1].macs
    assert "auto prune" in (tmp_path / "run" / "auto_prune.txt").read_text()


@pytest.mark.slow
def test_a_bare_budget_is_a_fraction_of_the_original_latency_timed_interleaved(run_prune):
    result = run_prune("0.98", search_budget=3, candidate_latency_cap_s=0.2, fill=False, noise_repeats=0)
    assert result.budget == "latency=0.98" and result.budget_metric == "latency_ms"
    assert result.budget_bound == pytest.approx(0.98 * result.reference["latency_ms"])
    assert result.reference["latency_ms"] > 0 and result.num_evaluations >= 1
    assert "interleaved" in result.latency_conditions or result.latency_conditions


def test_a_budget_the_smallest_policy_misses_names_the_smallest_reachable_one(run_prune, resnet, splits):
    with pytest.raises(BudgetUnreachableError) as info:
        run_prune("macs=0.001")
    message = str(info.value)
    assert "\n" not in message and "every group at ratio 0.8" in message
    reachable = re.search(r"smallest reachable budget is (macs=[0-9.]+)$", message).group(1)
    # The named budget is met by the most pruned policy.
    model = resnet()
    groups, _, ignored = prunable_groups(model, SHAPE)
    macs0 = count_macs(model, SHAPE)
    apply_prune_policy(model, SHAPE, dict.fromkeys(groups, 0.8), ignored=ignored)
    assert count_macs(model, SHAPE) <= float(reachable.split("=")[1]) * macs0


def test_layers_that_cannot_be_pruned_are_listed_and_skipped(splits, tiny, tiny_config, resnet_config, cheap):
    model = tiny(grouped=True, width=8).eval()
    with pytest.warns(UserWarning, match="skips mid"):
        result = auto_prune(
            model,
            splits,
            "size=0.9",
            model_config=tiny_config,
            search_budget=3,
            finetune_epochs=0,
            measure_latency=False,
            estimate=cheap,
        )
    assert any(s.layer == "mid" and "grouped" in s.reason for s in result.skipped)
    assert "mid" not in result.groups and result.groups == ("conv",)


def test_bn_criterion_on_a_model_without_batchnorm_is_a_clear_error(splits, tiny, tiny_config, resnet_config):
    with pytest.raises(InvalidInputError, match="no BatchNorm layer; use l1"):
        auto_prune(tiny(bn=False), splits, "macs=0.5", model_config=tiny_config, criterion="bn")


def test_estimate_without_batchnorm_warns_and_still_searches(splits, tiny, tiny_config, resnet_config, cheap):
    with pytest.warns(UserWarning, match="no BatchNorm"):
        result = auto_prune(
            tiny(bn=False, width=8),
            splits,
            "macs=0.7",
            model_config=tiny_config,
            search_budget=3,
            finetune_epochs=0,
            measure_latency=False,
            estimate=cheap,
        )
    assert "no BatchNorm" in result.estimate and result.rows[1].within_budget


@pytest.mark.slow
def test_searched_policy_is_filled_to_within_one_group_step_of_the_budget(run_prune, resnet):
    result = run_prune("macs=0.5", search_budget=8, noise_repeats=2)
    bound, macs0 = result.budget_bound, result.reference["macs"]
    searched = result.rows[1]
    assert searched.macs <= bound and result.fill is not None
    assert result.fill.cost_after == searched.macs and result.fill.cost_before <= result.fill.cost_after
    # Maximal: un-pruning any group by one more ratio step would exceed the budget.
    model = resnet()
    groups, _, ignored = prunable_groups(model, SHAPE)
    for group, ratio in result.policy.items():
        if ratio == 0:
            continue
        trial = resnet()
        policy = dict(result.policy) | {group: round(ratio - 0.1, 1)}
        apply_prune_policy(trial, SHAPE, policy, ignored=ignored)
        assert count_macs(trial, SHAPE) > bound, group
    # The sensitivity prior ranks every group, most sensitive per MAC first, and orders the filling.
    assert sorted(s.layer for s in result.sensitivity) == sorted(groups)
    drops = [s.drop_per_macs for s in result.sensitivity]
    assert drops == sorted(drops, reverse=True) and macs0 > bound
    # The chosen policy's estimate, repeated with another image draw: the first draw is the search's own.
    noise = result.estimate_noise
    assert len(noise.values_pct) == 2 and noise.values_pct[0] == pytest.approx(searched.estimate_accuracy_pct)
    assert noise.std_pct >= noise.sampling_se_pct > 0
    assert type(result).from_json(result.to_json()) == result


@pytest.mark.slow
def test_without_filling_the_policy_is_the_search_s_own(run_prune, tmp_path):
    result = run_prune("macs=0.5", tmp_path / "run", fill=False, noise_repeats=0)
    assert result.fill is None and result.estimate_noise is None
    searches = json.loads((tmp_path / "run" / "searches.json").read_text())
    evaluated = {e["arch"] for e in searches["policy"]["evaluations"]}
    assert result.rows[1].policy in evaluated


@pytest.mark.slow
def test_reranking_fills_the_best_candidates_and_chooses_by_the_second_estimate(run_prune):
    from slimforge.compress import EstimateConfig

    second = EstimateConfig(recal_images=32, score="fidelity", score_images=32)
    result = run_prune("macs=0.5", rerank=2, rerank_estimate=second, noise_repeats=2)
    assert len(result.reranked) == 2 and all(r.cost <= result.budget_bound for r in result.reranked)
    best = max(result.reranked, key=lambda r: r.rerank_estimate_pct)
    assert result.rows[1].policy == best.policy and result.rows[1].macs == best.cost
    # The noise is the second estimate's: its first draw is the re-ranking score of the chosen policy.
    assert result.estimate_noise.values_pct[0] == pytest.approx(best.rerank_estimate_pct)
