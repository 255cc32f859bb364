"""The candidate estimate: scores, distillation steps, its noise, and the audit that chooses one."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from slimforge.compress import ESTIMATES, EstimateConfig, audit_estimates
from slimforge.compress.auto import EstimateData, estimate_accuracy, estimate_noise
from slimforge.errors import InvalidInputError
from slimforge.training import accuracy


def test_top1_score_is_the_validation_accuracy(splits, resnet):
    model = resnet()
    config = EstimateConfig(recal_images=0)
    data = EstimateData.from_splits(splits, config, 0)
    assert estimate_accuracy(copy.deepcopy(model), data, config) == pytest.approx(accuracy(model, splits.val))


def test_fidelity_of_the_unpruned_network_to_itself_is_100_and_needs_the_teacher(splits, resnet):
    model = resnet()
    config = EstimateConfig(recal_images=0, score="fidelity", score_images=32)
    data = EstimateData.from_splits(splits, config, 0, teacher=model)
    assert len(data.score_images) == len(splits.val) + 32
    assert estimate_accuracy(copy.deepcopy(model), data, config) == pytest.approx(100.0)
    with torch.no_grad():
        damaged = copy.deepcopy(model)
        damaged.classifier.weight.normal_(0.0, 5.0, generator=torch.Generator().manual_seed(0))
    assert estimate_accuracy(damaged, data, config) < 95.0
    with pytest.raises(InvalidInputError, match="teacher"):
        EstimateData.from_splits(splits, config, 0)
    with pytest.raises(InvalidInputError, match="score 'acc'"):
        EstimateConfig(score="acc")


@pytest.mark.slow
def test_distillation_steps_train_the_candidate_towards_the_teacher(splits, resnet):
    teacher = resnet()
    config = EstimateConfig(recal_images=16, distill_steps=2, batch_size=16, score="fidelity")
    data = EstimateData.from_splits(splits, config, 0, teacher=teacher)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        student.classifier.weight.mul_(0.5)
    before = student.classifier.weight.detach().clone()
    estimate_accuracy(student, data, config)
    assert not torch.equal(before, student.classifier.weight) and not student.training
    assert config.needs_teacher and "2 distillation steps" in config.describe("pruning", 144)


def test_noise_repeats_the_estimate_with_other_draws_the_first_being_the_search_s(splits, resnet, cheap):
    model = resnet()
    data = EstimateData.from_splits(splits, cheap, 7)
    own = estimate_accuracy(copy.deepcopy(model), data, cheap)
    noise = estimate_noise(lambda: copy.deepcopy(model), splits, cheap, 7, repeats=3)
    assert len(noise.values_pct) == 3 and noise.values_pct[0] == pytest.approx(own)
    assert noise.sampling_se_pct > 0 and noise.std_pct >= max(noise.draw_std_pct, noise.sampling_se_pct)
    assert type(noise).from_json(noise.to_json()) == noise


def test_named_estimates_are_valid_configs():
    assert {"bn", "bn-fidelity", "kd", "kd-fidelity"} <= set(ESTIMATES.list())
    assert ESTIMATES.get("bn") == EstimateConfig()
    assert all(isinstance(ESTIMATES.get(n), EstimateConfig) for n in ESTIMATES.list())


@pytest.mark.slow
def test_audit_ranks_estimates_on_seeded_policies_at_the_budget_and_resumes(
    splits, resnet, resnet_config, tmp_path, monkeypatch
):
    run = dict(
        estimates=("bn", "bn-fidelity"),
        policies=5,
        noise_policies=2,
        repeats=2,
        model_config=resnet_config,
        finetune_epochs=0,
        seed=0,
    )
    audit = audit_estimates(resnet(), splits, "macs=0.6", tmp_path / "audit", **run)
    assert len(set(audit.policies)) == 5 and all(c <= audit.budget_bound for c in audit.costs)
    assert [a.name for a in audit.estimates] == ["bn", "bn-fidelity"] and audit.chosen in (
        "bn",
        "bn-fidelity",
    )
    best = max(audit.estimates, key=lambda a: a.kendall_tau_val if a.kendall_tau_val is not None else -2)
    assert audit.chosen == best.name
    assert all(len(a.scores_pct) == 5 and a.noise_std_pct >= 0 for a in audit.estimates)
    assert type(audit).from_json((tmp_path / "audit" / "estimate_audit.json").read_text()) == audit
    lines = (tmp_path / "audit" / "audit_progress.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[1])["policy"] == audit.policies[0]
    # A second run reads every policy back: nothing is estimated or finetuned again.
    import slimforge.compress.auto._audit as module

    monkeypatch.setattr(module, "estimate_noise", lambda *a, **k: pytest.fail("re-estimated"))
    again = audit_estimates(resnet(), splits, "macs=0.6", tmp_path / "audit", **run)
    assert again.policies == audit.policies and again.val_accuracy_pct == audit.val_accuracy_pct
    with pytest.raises(InvalidInputError, match="other settings"):
        audit_estimates(resnet(), splits, "macs=0.6", tmp_path / "audit", **(run | {"seed": 1}))
