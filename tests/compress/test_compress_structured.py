"""Structured pruning through torch-pruning: consistent networks, criteria, skipped layers, reloading."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from slimforge.compress import compressed_config
from slimforge.compress.prune import (
    IMPORTANCES,
    NotTraceableError,
    SlimmingHook,
    check_prunable,
    prune_channels,
)
from slimforge.errors import InvalidInputError
from slimforge.io import build_model, load_model, save_model
from slimforge.zoo import create_model

SHAPE = (1, 3, 8, 8)
CONFIG = {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.5}}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(CONFIG).eval()


def _widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def _prune(model: nn.Module, **kwargs) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prune_channels(model, SHAPE, **kwargs)


@pytest.mark.parametrize("criterion", IMPORTANCES.list())
def test_every_criterion_prunes_a_runnable_smaller_network(criterion):
    model = _model()
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))]
    result = _prune(model, criterion=criterion, ratio=0.5, batches=batches)
    assert result.num_params_after < 0.35 * result.num_params_before  # about (1 - 0.5)^2 of conv weights
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert model.classifier.out_features == 10
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_criteria_choose_different_channels_and_random_is_seeded():
    def kept(criterion: str, seed: int = 0) -> torch.Tensor:
        model = _model()
        _prune(model, criterion=criterion, ratio=0.5, seed=seed)
        return model.stem[0].weight.detach().clone()

    assert not torch.equal(kept("l1"), kept("random"))
    assert torch.equal(kept("random", 3), kept("random", 3))
    assert not torch.equal(kept("random", 3), kept("random", 4))


def test_l1_keeps_the_filters_with_largest_norm():
    model = _model()
    # Make stem filter 0 tiny: L1 must drop it; its group is the stem + stage 1 residual channels.
    with torch.no_grad():
        model.stem[0].weight[0].mul_(1e-4)
        for block in model.stages[:3]:
            block.conv2[0].weight[0].mul_(1e-4)
    before = model.stem[0].weight.detach().clone()
    _prune(model, criterion="l1", ratio=0.25)
    after = model.stem[0].weight.detach()
    assert after.shape[0] == before.shape[0] - 2
    assert not any(torch.allclose(after[i], before[0]) for i in range(after.shape[0]))


def test_per_layer_ratio_and_iterative_schedule():
    model = _model()
    calls = []
    _prune(
        model,
        ratio=0.25,
        layer_ratios={"stages.0.conv1": 0.75},
        steps=2,
        finetune=lambda m, s: calls.append(s),
    )
    assert calls == [0, 1]
    widths = _widths(model)
    assert model.stages[0].conv1[0].out_channels == 2  # 8 * (1 - 0.75)
    assert model.stages[1].conv1[0].out_channels == 6  # 8 * (1 - 0.25)
    assert len(widths) == len(_widths(_model()))


def test_bad_arguments_raise_before_pruning():
    model = _model()
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(InvalidInputError):
        _prune(model, ratio=1.0)
    with pytest.raises(InvalidInputError, match="no such layer"):
        _prune(model, ratio=0.5, layer_ratios={"stages.99": 0.5})
    with pytest.raises(InvalidInputError, match="taylor"):
        _prune(model, criterion="taylor", ratio=0.5)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_check_lists_output_layer_and_leaves_model_alone():
    model = _model()
    state = copy.deepcopy(model.state_dict())
    check = check_prunable(model, SHAPE)
    assert [s.layer for s in check.skipped] == ["classifier"]
    assert "stem.0" in check.prunable
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_grouped_convolutions_are_skipped_with_a_warning_not_a_crash():
    model = create_model("shufflenet_v1", num_classes=10, width=0.5).eval()
    check = check_prunable(model, SHAPE)
    reasons = [s.reason for s in check.skipped]
    assert any("grouped convolution" in r for r in reasons)
    with pytest.warns(UserWarning, match="skips"):
        prune_channels(model, SHAPE, ratio=0.5)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_model_that_does_not_trace_gives_one_line_error():
    model = create_model("shufflenet_v2", num_classes=10, width=0.5).eval()
    with pytest.raises(NotTraceableError) as info:
        check_prunable(model, SHAPE)
    assert "\n" not in str(info.value) and "does not trace" in str(info.value)


def test_slimming_hook_pushes_bn_scales_towards_zero():
    model = _model()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    SlimmingHook(0.01).after_backward(model)
    bn = model.stem[1]
    assert torch.allclose(bn.weight.grad, 0.01 * torch.sign(bn.weight.detach()))
    assert torch.count_nonzero(model.stem[0].weight.grad) == 0


def test_pruned_model_reloads_from_its_config(tmp_path):
    model = _model()
    _prune(model, ratio=0.5)
    config = compressed_config(model, CONFIG, stages=["prune:l1:0.5"], input_shape=list(SHAPE))
    assert config["builder"] == "compressed" and config["base"] == CONFIG
    assert "classifier" in config["layers"]  # its inputs were pruned
    save_model(model, config, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    # A compressed config compressed again keeps the original base and the stage history.
    again = compressed_config(loaded, config, stages=["quantize:int8"])
    assert again["base"] == CONFIG and again["stages"] == ["prune:l1:0.5", "quantize:int8"]


def test_factorised_model_reloads_from_its_config(tmp_path):
    from slimforge.compress.lowrank import factorise

    model = _model()
    factorise(model, "tucker", ratio=0.5, exclude=["stem.0"])
    factorise(model, "svd", ratio=0.5)
    config = compressed_config(model, CONFIG, stages=["lowrank:tucker:ratio=0.5", "lowrank:svd:ratio=0.5"])
    assert {spec["type"] for spec in config["layers"].values()} == {"Sequential"}
    save_model(model, config, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
