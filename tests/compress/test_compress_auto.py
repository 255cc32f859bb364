"""Automated compression: pruning-policy search, mixed precision, joint architecture + bits, budgets."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.compress import EstimateConfig, auto_bits, auto_prune, joint_search, parse_budget
from slimforge.compress.auto import (
    BitPolicySpace,
    EstimateData,
    JointCosts,
    JointSpace,
    PrunePolicyEvaluator,
    PrunePolicySpace,
)
from slimforge.compress.prune import apply_prune_policy, prunable_groups
from slimforge.compress.quantize import (
    MixedBitHook,
    bit_sensitivity,
    linear_quantize,
    mixed_precision_bytes,
    quantizable_layers,
    quantize_weights,
)
from slimforge.data import load_dataset
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.hardware import count_macs
from slimforge.io import build_model, load_model

SHAPE = (1, 3, 8, 8)
CONFIG = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.25}}
CHEAP = EstimateConfig(recal_images=32, val_images=64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def splits():
    return load_dataset("digits", image_size=8, seed=0)


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return build_model(CONFIG).eval()


class _Tiny(nn.Module):
    """(a grouped conv, not prunable), conv-BN-ReLU, pool, linear: small enough to count by hand."""

    def __init__(
        self, bn: bool = True, grouped: bool = False, transposed: bool = False, width: int = 4
    ) -> None:
        super().__init__()
        self.mid = nn.Conv2d(3, 6, 3, padding=1, groups=3) if grouped else nn.Identity()
        self.conv = nn.Conv2d(6 if grouped else 3, width, 3, padding=1, bias=not bn)
        self.bn = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.up = nn.ConvTranspose2d(width, width, 1) if transposed else nn.Identity()
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(torch.relu(self.bn(self.conv(self.mid(x)))))
        return self.fc(x.mean((2, 3)))


TINY_CONFIG = {"builder": "zoo", "name": "resnet20"}  # only used to label results; never rebuilt here


# ---- budgets ----------------------------------------------------------------------------------------


def test_budget_keys_read_and_bound():
    b = parse_budget("macs=0.5", ("macs", "bytes"))
    assert (b.metric, b.kind, b.value, b.text) == ("macs", "fraction", 0.5, "macs=0.5")
    assert b.bound(1000.0) == 500.0
    assert parse_budget("latency_ms=2.5", ("latency_ms",)).bound(99.0) == 2.5
    relative = parse_budget("latency=0.7", ("latency",))
    assert (relative.metric, relative.kind, relative.bound(2.0)) == ("latency_ms", "fraction", 1.4)
    assert parse_budget(" size = 0.25 ", ("size",)).metric == "bytes"
    bits = parse_budget("bits=4", ("bits",))
    assert bits.bound(1234.0) == 1234.0 and type(b).from_json(b.to_json()) == b


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("macs", InvalidInputError, "KEY=VALUE"),
        ("flops=0.5", UnknownNameError, "unknown budget key 'flops'"),
        ("mac=0.5", UnknownNameError, "did you mean macs"),
        ("macs=half", InvalidInputError, "not a finite number"),
        ("macs=nan", InvalidInputError, "not a finite number"),
        ("macs=1.5", InvalidInputError, r"must be in \(0, 1\]"),
        ("macs=0", InvalidInputError, r"must be in \(0, 1\]"),
        ("latency_ms=-1", InvalidInputError, "must be in"),
        ("latency=1.2", InvalidInputError, r"must be in \(0, 1\]"),
        ("bits=9", InvalidInputError, r"must be in \[2, 8\]"),
        ("bits=4.5", InvalidInputError, "whole number"),
        ("bitops=0.3", InvalidInputError, "does not take 'bitops'"),
        ("macs=0.5,bytes=9", InvalidInputError, "give one"),
    ],
)
def test_malformed_budgets_are_one_line_errors(text, error, match):
    with pytest.raises(error, match=match) as info:
        parse_budget(text, ("macs", "latency", "latency_ms", "bytes", "size", "bits"))
    assert "\n" not in str(info.value)


def test_search_settings_scale_the_population_to_the_budget():
    from slimforge.compress.auto import search_settings

    nsga2 = search_settings("nsga2", 40)
    assert nsga2["pop_size"] == 10 and nsga2["iterations"] is None
    assert nsga2["n_crossover"] + nsga2["n_mutation"] + nsga2["n_random"] == 10
    assert search_settings("random", 40) == {"batch_size": 5}
    assert search_settings("nsga2", 8, {"pop_size": 6})["pop_size"] == 6


# ---- pruning policies -------------------------------------------------------------------------------


def test_prune_policy_space_has_one_gene_per_prunable_group():
    model = _resnet()
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


@pytest.mark.slow
def test_applied_policy_changes_macs_exactly_as_evaluated(splits):
    model = _resnet()
    groups, _, ignored = prunable_groups(model, SHAPE)
    space = PrunePolicySpace(model, SHAPE, groups, ignored=ignored)
    evaluator = PrunePolicyEvaluator(space, EstimateData.from_splits(splits, CHEAP, 0), CHEAP)
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


def _auto_prune(splits, budget="macs=0.5", out=None, **kwargs):
    options = dict(
        model_config=CONFIG, search_budget=6, finetune_epochs=0, measure_latency=False, estimate=CHEAP, seed=0
    )
    options.update(kwargs)
    return auto_prune(_resnet(), splits, budget, out, **options)


@pytest.mark.slow
def test_auto_prune_meets_the_budget_is_deterministic_and_saves_reloadable_models(splits, tmp_path):
    first = _auto_prune(splits, out=tmp_path / "run")
    again = _auto_prune(splits)
    assert first.budget_met and first.rows[1].within_budget and first.rows[1].cost <= first.budget_bound
    assert first.budget_bound == 0.5 * first.reference["macs"]
    assert first.policy == again.policy and first.front == again.front
    assert first.num_evaluations == 6 and first.front
    # The uniform baseline meets the same budget with the smallest ratio that does.
    uniform = first.rows[2]
    assert uniform.within_budget and uniform.name == f"uniform {first.uniform_ratio:g}"
    model = _resnet()
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
def test_relative_latency_budget_is_a_fraction_of_the_measured_original(splits):
    result = _auto_prune(splits, "latency=0.98", search_budget=3, candidate_latency_cap_s=0.2)
    assert result.budget_metric == "latency_ms"
    assert result.budget_bound == pytest.approx(0.98 * result.reference["latency_ms"])
    assert result.reference["latency_ms"] > 0 and result.num_evaluations >= 1


def test_unmeetable_pruning_budget_reports_the_closest_policy(splits):
    result = _auto_prune(splits, "macs=0.001")
    assert not result.budget_met and "cannot be met" in result.message
    assert set(result.policy.values()) == {0.8} and result.num_evaluations == 1
    assert result.uniform_ratio is None and len(result.rows) == 2


def test_layers_that_cannot_be_pruned_are_listed_and_skipped(splits):
    model = _Tiny(grouped=True, width=8).eval()
    with pytest.warns(UserWarning, match="skips mid"):
        result = auto_prune(
            model, splits, "size=0.9", model_config=TINY_CONFIG, search_budget=3, finetune_epochs=0,
            measure_latency=False, estimate=CHEAP,
        )
    assert any(s.layer == "mid" and "grouped" in s.reason for s in result.skipped)
    assert "mid" not in result.groups and result.groups == ("conv",)


def test_bn_criterion_on_a_model_without_batchnorm_is_a_clear_error(splits):
    with pytest.raises(InvalidInputError, match="no BatchNorm layer; use l1"):
        auto_prune(_Tiny(bn=False), splits, "macs=0.5", model_config=TINY_CONFIG, criterion="bn")


def test_estimate_without_batchnorm_warns_and_still_searches(splits):
    with pytest.warns(UserWarning, match="no BatchNorm"):
        result = auto_prune(
            _Tiny(bn=False, width=8), splits, "macs=0.7", model_config=TINY_CONFIG, search_budget=3,
            finetune_epochs=0, measure_latency=False, estimate=CHEAP,
        )
    assert "no BatchNorm" in result.estimate and result.rows[1].within_budget


# ---- mixed precision --------------------------------------------------------------------------------


def test_mixed_precision_bytes_are_counted_by_hand():
    model = _Tiny()
    bits = {"conv": 3, "fc": 5}
    # conv: 108 weights x 3 bits -> 41 bytes + 4 float32 scales; fc: 40 x 5 bits -> 25 bytes + 10 scales;
    # float32: BN weight + bias (8) and fc bias (10).
    assert mixed_precision_bytes(model, bits) == 41 + 16 + 25 + 40 + 4 * 18
    # k-means stores a 2**bits float32 codebook per layer instead of the scales.
    assert mixed_precision_bytes(model, bits, quantizer="kmeans") == 41 + 4 * 8 + 25 + 4 * 32 + 4 * 18
    assert mixed_precision_bytes(model, {}) == 4 * sum(p.numel() for p in model.parameters())


def test_quantized_weights_take_at_most_the_levels_of_their_bit_width():
    model = _Tiny()
    quantize_weights(model, {"conv": 2, "fc": 3})
    for row in model.conv.weight.detach().flatten(1):
        assert len(torch.unique(row)) <= 3  # symmetric 2-bit: -s, 0, +s
    assert all(len(torch.unique(r)) <= 7 for r in model.fc.weight.detach())
    kmeans = _Tiny()
    quantize_weights(kmeans, {"conv": 2}, quantizer="kmeans")
    assert len(torch.unique(kmeans.conv.weight)) <= 4
    assert torch.equal(linear_quantize(model.fc.weight, 3), model.fc.weight)  # idempotent


def test_unquantizable_layers_are_listed_and_missing_layers_rejected():
    layers, skipped = quantizable_layers(_Tiny(transposed=True))
    assert layers == ["conv", "fc"] and [s.layer for s in skipped] == ["up"]
    assert "ConvTranspose2d" in skipped[0].reason
    with pytest.raises(InvalidInputError, match="no such layer"):
        quantizable_layers(_Tiny(), ["nope"])
    with pytest.raises(InvalidInputError, match="bit-width 9"):
        quantize_weights(_Tiny(), {"conv": 9})


def test_bit_sensitivity_ranks_every_layer_and_leaves_the_model_alone(splits):
    model = _resnet()
    layers, _ = quantizable_layers(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = EstimateData.from_splits(splits, CHEAP, 0)
    rows = bit_sensitivity(model, layers, 2, data.val_images, data.val_labels)
    assert sorted(r.layer for r in rows) == sorted(layers)
    assert [r.output_kl for r in rows] == sorted((r.output_kl for r in rows), reverse=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_mixed_bit_hook_trains_on_the_grid(splits):
    from slimforge.training import TrainSettings, train_classifier

    model = _Tiny()
    bits = {"conv": 2, "fc": 3}
    hook = MixedBitHook(bits, linear_quantize)
    train_classifier(model, splits.train, TrainSettings(epochs=1, batch_size=64), hooks=[hook])
    assert torch.equal(linear_quantize(model.conv.weight.detach(), 2), model.conv.weight.detach())
    assert all(len(torch.unique(r)) <= 3 for r in model.conv.weight.detach().flatten(1))


@pytest.mark.slow
def test_auto_bits_meets_the_size_of_uniform_4_bit(splits, tmp_path):
    result = auto_bits(
        _resnet(), splits, "bits=4", tmp_path / "bits", model_config=CONFIG, search_budget=8,
        finetune_epochs=0, estimate=CHEAP, seed=0,
    )
    assert result.budget_bound_bytes == result.uniform_bytes["4"]
    assert result.budget_met and result.rows[1].bytes <= result.uniform_bytes["4"]
    assert list(result.policy) == list(result.layers) and set(result.policy.values()) <= {2, 3, 4, 5, 6, 8}
    names = [r.name for r in result.rows]
    assert names == ["original (float32)", "searched", "uniform 4-bit (equal size)", "uniform 8-bit"]
    assert result.rows[2].bytes == result.uniform_bytes["4"] and result.rows[2].avg_weight_bits == 4.0
    assert len(result.sensitivity) == len(result.layers) and result.equal_size_bits == 4
    searched = load_model(tmp_path / "bits" / "searched")
    assert mixed_precision_bytes(searched, result.policy) == result.rows[1].bytes
    assert type(result).from_json(result.to_json()) == result


@pytest.fixture
def recalibrations(monkeypatch):
    """A list that gets one entry per call of ``slimforge.supernet.recalibrate_bn`` (which still runs)."""
    import slimforge.supernet as sn

    calls = []
    real = sn.recalibrate_bn

    def spy(*args, **kwargs):
        calls.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(sn, "recalibrate_bn", spy)
    return calls


@pytest.mark.slow
def test_finetuned_bit_policies_keep_their_trained_batchnorm_statistics(splits, recalibrations):
    # Re-estimating BN on a few hundred un-augmented images after a QAT finetune cost ResNet-20 about
    # 4 points; only the un-finetuned (PTQ) final models may be re-calibrated.
    calls = recalibrations
    counts = {}
    for epochs in (0, 1):
        calls.clear()
        result = auto_bits(
            _resnet(), splits, "bits=4", model_config=CONFIG, search_budget=4,
            finetune_epochs=epochs, estimate=CHEAP, seed=0,
        )
        counts[epochs] = len(calls)
    finals = len(result.rows) - 1  # every row but the original is a final model
    assert counts[0] - counts[1] == finals


def test_unmeetable_size_budget_reports_the_closest_policy(splits):
    result = auto_bits(_resnet(), splits, "size=0.01", model_config=CONFIG, finetune_epochs=0, estimate=CHEAP)
    assert not result.budget_met and "cannot be met" in result.message
    assert set(result.policy.values()) == {2} and result.front == ()


def test_bit_policy_space_builds_quantized_copies():
    model = _Tiny()
    space = BitPolicySpace(model, ["conv", "fc"], (2, 4, 8))
    g = space.genome_of({"conv": 2, "fc": 8})
    built = space.build(g, 10)
    assert space.bits(g) == {"conv": 2, "fc": 8} and space.to_string(g) == "2,8"
    assert all(len(torch.unique(r)) <= 3 for r in built.conv.weight.detach().flatten(1))
    assert not torch.equal(built.conv.weight, model.conv.weight)


# ---- joint ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def supernet():
    from slimforge.spaces.mbv2 import MBV2Space
    from slimforge.supernet import make_supernet

    space = MBV2Space(width=0.35, resolution=8, stage_depths=(2, 1, 1, 1, 1, 1))
    return make_supernet(space, 10, 0).eval()


def test_joint_space_costs_and_canonical_form(supernet):
    space = JointSpace(supernet.space, supernet=supernet)
    costs = JointCosts.measure(space, supernet, SHAPE)
    rng = np.random.default_rng(1)
    identity = supernet.space.identity_choice
    for _ in range(4):
        g = space.canonical(space.sample(rng))
        assert space.canonical(g) == g and space.from_string(space.to_string(g)) == g
        net = space.build(g, 10)
        assert costs.of(space, g, 8)["macs"] == count_macs(net, SHAPE)
        convs = {n for n, m in net.named_modules() if type(m) in (nn.Conv2d, nn.Linear)}
        assert set(space.bit_policy(g)) == convs
    # An identity layer's bit genes are unused: the canonical form fixes them.
    arch = list(space.split(space.canonical(space.sample(rng)))[0])
    arch[1] = identity  # layer 1 keeps its shape in this space
    a = space.join(tuple(arch), 2)
    b = space.join(tuple(arch), 4)
    genes_a, genes_b = list(a), list(b)
    genes_b[: space.slot_offset[1]] = genes_a[: space.slot_offset[1]]
    genes_b[space.slot_offset[2] :] = genes_a[space.slot_offset[2] :]
    assert space.canonical(tuple(genes_b)) == space.canonical(a)
    c = costs.of(space, space.join(tuple(arch), 4), 8)
    assert c["bitops"] == c["macs"] * 4 * 8 and c["avg_bits"] == 4


@pytest.mark.slow
def test_joint_search_meets_the_budget_and_reports_the_sequential_baselines(supernet, splits, tmp_path):
    result = joint_search(
        supernet, splits, "bitops=0.4", tmp_path / "joint", search_budget=6, baseline_bits=(4, 8),
        recal_images=16,
    )
    assert result.budget_met and result.rows[0].bitops <= result.budget_bound
    assert result.rows[0].name == "joint"
    assert all(r.within_budget == (r.cost <= result.budget_bound) for r in result.rows)
    assert {r.name for r in result.rows[1:]} <= {"float arch, then 4-bit", "float arch, then 8-bit"}
    # The extracted, quantized network scores what the supernet path scored during the search.
    assert all(math.isclose(r.estimate_accuracy_pct, r.val_accuracy_pct) for r in result.rows)
    assert (tmp_path / "joint" / "joint_search.json").is_file()
    assert type(result).from_json(result.to_json()) == result


def test_finetuned_joint_networks_keep_their_trained_batchnorm_statistics(
    supernet, splits, recalibrations
):
    calls = recalibrations
    counts = {}
    for epochs in (0, 1):
        calls.clear()
        result = joint_search(
            supernet, splits, "bitops=0.4", search_budget=3, baseline_bits=(8,), recal_images=16,
            finetune_epochs=epochs,
        )
        counts[epochs] = len(calls)
    assert counts[0] - counts[1] == 2 * len(result.rows)  # each final row: validation and test


@pytest.mark.slow
def test_joint_search_on_an_elastic_supernet_matches_the_separate_costs(supernet, splits, tmp_path):
    # An elastic supernet shares modules between choices: layer paths and costs come from a
    # separate-weights probe, candidates are quantized after extraction.
    from slimforge.spaces.mbv2 import MBV2Space
    from slimforge.supernet import make_supernet

    space = MBV2Space(width=0.35, resolution=8, stage_depths=(2, 1, 1, 1, 1, 1), sharing="elastic")
    elastic = make_supernet(space, 10, 0).eval()
    joint = JointSpace(space, supernet=elastic)
    assert joint.slot_paths == JointSpace(supernet.space, supernet=supernet).slot_paths
    result = joint_search(
        elastic, splits, "bitops=0.4", tmp_path / "joint", search_budget=4, baseline_bits=(8,), recal_images=16
    )
    assert result.budget_met and result.rows[0].bitops <= result.budget_bound
    assert all(math.isclose(r.estimate_accuracy_pct, r.val_accuracy_pct) for r in result.rows)


def test_joint_search_refuses_a_non_layerwise_space(splits):
    from slimforge.spaces import get_space
    from slimforge.supernet import make_supernet

    net = make_supernet(get_space("nb201"), 10, 0)
    with pytest.raises(InvalidInputError, match="layer-wise space"):
        joint_search(net, splits, "bitops=0.5")


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
        "compress", "resnet20", "--width", "0.25", "--data", "digits", "--auto", "prune",
        "--budget", "macs=0.5", "--search-budget", "4", "--finetune-epochs", "0", "--recal", "16",
        "--no-latency", "--out", str(out), "--json",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget"] == "macs=0.5" and doc["rows"][1]["within_budget"] and doc["front"]
    written = {p.name for p in out.iterdir()}
    assert written >= {"auto_prune.json", "auto_prune.txt", "searches.json", "searched"}
