"""Mixed precision: k-bit quantizers, sizes, sensitivity, the search, filling, and the runtime caveat."""

from __future__ import annotations

import pytest
import torch

from slimforge.compress import auto_bits
from slimforge.compress.auto import BitPolicySpace, BudgetUnreachableError, EstimateData
from slimforge.compress.quantize import (
    MixedBitHook,
    bit_sensitivity,
    linear_quantize,
    mixed_precision_bytes,
    quantizable_layers,
    quantize_weights,
)
from slimforge.errors import InvalidInputError
from slimforge.io import load_model


def test_mixed_precision_bytes_are_counted_by_hand(tiny):
    model = tiny()
    bits = {"conv": 3, "fc": 5}
    # conv: 108 weights x 3 bits -> 41 bytes + 4 float32 scales; fc: 40 x 5 bits -> 25 bytes + 10 scales;
    # float32: BN weight + bias (8) and fc bias (10).
    assert mixed_precision_bytes(model, bits) == 41 + 16 + 25 + 40 + 4 * 18
    # k-means stores a 2**bits float32 codebook per layer instead of the scales.
    assert mixed_precision_bytes(model, bits, quantizer="kmeans") == 41 + 4 * 8 + 25 + 4 * 32 + 4 * 18
    assert mixed_precision_bytes(model, {}) == 4 * sum(p.numel() for p in model.parameters())


def test_quantized_weights_take_at_most_the_levels_of_their_bit_width(tiny):
    model = tiny()
    quantize_weights(model, {"conv": 2, "fc": 3})
    for row in model.conv.weight.detach().flatten(1):
        assert len(torch.unique(row)) <= 3  # symmetric 2-bit: -s, 0, +s
    assert all(len(torch.unique(r)) <= 7 for r in model.fc.weight.detach())
    kmeans = tiny()
    quantize_weights(kmeans, {"conv": 2}, quantizer="kmeans")
    assert len(torch.unique(kmeans.conv.weight)) <= 4
    assert torch.equal(linear_quantize(model.fc.weight, 3), model.fc.weight)  # idempotent


def test_unquantizable_layers_are_listed_and_missing_layers_rejected(tiny):
    layers, skipped = quantizable_layers(tiny(transposed=True))
    assert layers == ["conv", "fc"] and [s.layer for s in skipped] == ["up"]
    assert "ConvTranspose2d" in skipped[0].reason
    with pytest.raises(InvalidInputError, match="no such layer"):
        quantizable_layers(tiny(), ["nope"])
    with pytest.raises(InvalidInputError, match="bit-width 9"):
        quantize_weights(tiny(), {"conv": 9})


def test_bit_sensitivity_ranks_every_layer_and_leaves_the_model_alone(splits, resnet, cheap):
    model = resnet()
    layers, _ = quantizable_layers(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = EstimateData.from_splits(splits, cheap, 0)
    rows = bit_sensitivity(model, layers, 2, data.val_images, data.val_labels)
    assert sorted(r.layer for r in rows) == sorted(layers)
    assert [r.output_kl for r in rows] == sorted((r.output_kl for r in rows), reverse=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_mixed_bit_hook_trains_on_the_grid(splits, tiny):
    from slimforge.training import TrainSettings, train_classifier

    model = tiny()
    bits = {"conv": 2, "fc": 3}
    hook = MixedBitHook(bits, linear_quantize)
    train_classifier(model, splits.train, TrainSettings(epochs=1, batch_size=64), hooks=[hook])
    assert torch.equal(linear_quantize(model.conv.weight.detach(), 2), model.conv.weight.detach())
    assert all(len(torch.unique(r)) <= 3 for r in model.conv.weight.detach().flatten(1))


@pytest.mark.slow
def test_auto_bits_meets_the_size_of_uniform_4_bit(splits, tmp_path, resnet, resnet_config, cheap):
    result = auto_bits(
        resnet(),
        splits,
        "bits=4",
        tmp_path / "bits",
        model_config=resnet_config,
        search_budget=8,
        finetune_epochs=0,
        estimate=cheap,
        seed=0,
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


@pytest.mark.slow
def test_finetuned_bit_policies_keep_their_trained_batchnorm_statistics(
    splits, recalibrations, resnet, resnet_config, cheap
):
    # Re-estimating BN on a few hundred un-augmented images after a QAT finetune cost ResNet-20 about
    # 4 points; only the un-finetuned (PTQ) final models may be re-calibrated.
    calls = recalibrations
    counts = {}
    for epochs in (0, 1):
        calls.clear()
        result = auto_bits(
            resnet(),
            splits,
            "bits=4",
            model_config=resnet_config,
            search_budget=4,
            finetune_epochs=epochs,
            estimate=cheap,
            seed=0,
        )
        counts[epochs] = len(calls)
    finals = len(result.rows) - 1  # every row but the original is a final model
    assert counts[0] - counts[1] == finals


def test_a_size_budget_below_uniform_lowest_bits_names_the_smallest_reachable(
    splits, resnet, resnet_config, cheap
):
    with pytest.raises(
        BudgetUnreachableError, match=r"every layer at 2 bits.*smallest reachable budget is size=0\.\d+$"
    ):
        auto_bits(
            resnet(), splits, "size=0.01", model_config=resnet_config, finetune_epochs=0, estimate=cheap
        )


def test_bit_policy_space_builds_quantized_copies(tiny):
    model = tiny()
    space = BitPolicySpace(model, ["conv", "fc"], (2, 4, 8))
    g = space.genome_of({"conv": 2, "fc": 8})
    built = space.build(g, 10)
    assert space.bits(g) == {"conv": 2, "fc": 8} and space.to_string(g) == "2,8"
    assert all(len(torch.unique(r)) <= 3 for r in built.conv.weight.detach().flatten(1))
    assert not torch.equal(built.conv.weight, model.conv.weight)


@pytest.mark.slow
def test_mixed_precision_is_filled_to_within_one_bit_of_the_budget(splits, resnet, resnet_config, cheap):
    result = auto_bits(
        resnet(),
        splits,
        "0.2",
        model_config=resnet_config,
        search_budget=6,
        finetune_epochs=0,
        estimate=cheap,
        noise_repeats=0,
    )
    assert result.budget == "size=0.2" and "not measured latency" in result.cost_note
    bound, searched = result.budget_bound_bytes, result.rows[1]
    assert searched.bytes <= bound and result.fill is not None and result.fill.cost_after == searched.bytes
    model, choices = resnet(), result.bit_choices
    for layer, bits in result.policy.items():
        if bits == choices[-1]:
            continue
        more = dict(result.policy) | {layer: choices[choices.index(bits) + 1]}
        assert mixed_precision_bytes(model, more) > bound, layer
