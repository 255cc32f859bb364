"""Analytic cost models: the registry, each model against the profiler's own functions, files and modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.hardware import count_macs, export_onnx, model_size_bytes, peak_activation_bytes
from slimforge.hardware.cost import COST_MODELS, ModelSize, estimate_costs
from slimforge.hardware.energy import estimate_energy

SHAPE = (1, 3, 16, 16)


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    return export_onnx(conv_net(), SHAPE, tmp_path_factory.mktemp("cost") / "net.onnx")


@pytest.mark.parametrize("name", COST_MODELS.list())
def test_every_cost_model_agrees_on_module_and_file(name, onnx_file) -> None:
    model = COST_MODELS.get(name)()
    assert model.name == name and model.unit
    from_file = model.estimate(onnx_file, SHAPE)
    assert from_file > 0
    assert model.estimate(str(onnx_file), SHAPE) == from_file  # a str is a path, not a zoo name
    net = conv_net().train()
    assert model.estimate(net, SHAPE) == pytest.approx(
        from_file
    )  # no BatchNorm: the export keeps every weight
    assert net.training


def test_cost_models_are_the_profiler_figures() -> None:
    net = conv_net()
    params = sum(p.numel() for p in net.parameters())
    costs = estimate_costs(net, SHAPE, COST_MODELS.list(), weight_bits=8, precision="int8")
    assert costs["num_params"] == params
    assert costs["macs"] == count_macs(net, SHAPE)
    assert costs["peak_act_bytes"] == peak_activation_bytes(net, SHAPE)
    assert costs["model_size_bytes"] == model_size_bytes(params, 8)
    assert costs["energy_mj"] == pytest.approx(estimate_energy(net, SHAPE, precision="int8").energy_mj)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="cost model"):
        estimate_costs(conv_net(), SHAPE, ["flops_per_watt"])
    with pytest.raises(InvalidInputError, match="weight_bits"):
        ModelSize(weight_bits=0)
    with pytest.raises(InvalidInputError, match="nn.Module or an .onnx file"):
        COST_MODELS.get("macs")().estimate(42, SHAPE)
