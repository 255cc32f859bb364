"""The analytic energy model: constants and their source, both terms, precision, batch, ONNX files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware import count_macs, export_onnx
from slimforge.hardware.energy import HOROWITZ_45NM, EnergyConstants, EnergyEstimate, estimate_energy


def conv_net() -> nn.Module:
    # No BatchNorm, so the ONNX export has exactly the module's parameters.
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def act_bytes_fp32(shape: tuple[int, ...]) -> int:
    """Input + output activation bytes of the three MAC layers of conv_net (float32)."""
    n, _, h, w = shape
    conv1 = 3 * h * w + 8 * h * w
    conv2 = 8 * h * w + 16 * (h // 2) * (w // 2)
    linear = 16 + 10
    return 4 * n * (conv1 + conv2 + linear)


def test_constants_are_horowitz_45nm() -> None:
    c = HOROWITZ_45NM
    assert c.pj_per_mac_fp32 == pytest.approx(3.7 + 0.9)
    assert c.pj_per_mac_int8 == pytest.approx(0.2 + 0.03)
    assert c.pj_per_dram_byte == pytest.approx(640 / 4)
    assert "Horowitz" in c.source and "ISSCC 2014" in c.source


def test_fp32_terms_follow_the_formula() -> None:
    model, shape = conv_net(), (1, 3, 16, 16)
    e = estimate_energy(model, shape)
    macs = count_macs(model, shape)
    assert e.macs == macs and e.precision == "fp32"
    assert e.compute_mj == pytest.approx(macs * 4.6e-9)
    assert e.weight_bytes == 4 * num_params(model)
    assert e.activation_bytes == act_bytes_fp32(shape)
    assert e.memory_mj == pytest.approx((e.weight_bytes + e.activation_bytes) * 160e-9)
    assert e.energy_mj == pytest.approx(e.compute_mj + e.memory_mj)
    assert "order-of-magnitude" in e.source and "Horowitz" in e.source


def test_int8_is_cheaper_per_mac_and_per_byte() -> None:
    model, shape = conv_net(), (1, 3, 16, 16)
    fp32 = estimate_energy(model, shape)
    int8 = estimate_energy(model, shape, precision="int8")
    assert int8.macs == fp32.macs
    assert int8.compute_mj == pytest.approx(fp32.compute_mj * 0.23 / 4.6)
    assert int8.weight_bytes == fp32.weight_bytes // 4
    assert int8.activation_bytes == fp32.activation_bytes // 4


def test_batch_scales_activations_not_weights() -> None:
    model = conv_net()
    one = estimate_energy(model, (1, 3, 16, 16))
    two = estimate_energy(model, (2, 3, 16, 16))
    assert two.macs == 2 * one.macs
    assert two.activation_bytes == 2 * one.activation_bytes
    assert two.weight_bytes == one.weight_bytes


def test_custom_constants_are_used() -> None:
    model, shape = conv_net(), (1, 3, 8, 8)
    free_memory = EnergyConstants(
        pj_per_mac_fp32=1.0, pj_per_mac_int8=0.5, pj_per_dram_byte=0.0, source="test"
    )
    e = estimate_energy(model, shape, constants=free_memory)
    assert e.memory_mj == 0.0
    assert e.energy_mj == pytest.approx(count_macs(model, shape) * 1e-9)


def test_onnx_file_matches_the_module(tmp_path) -> None:
    model, shape = conv_net(), (1, 3, 16, 16)
    path = export_onnx(model, shape, tmp_path / "net.onnx")
    from_module = estimate_energy(model, shape)
    from_file = estimate_energy(path, shape)
    assert from_file.macs == from_module.macs
    assert from_file.weight_bytes == from_module.weight_bytes
    assert from_file.energy_mj == pytest.approx(from_module.energy_mj)


def test_qdq_onnx_model_is_read_as_int8(tmp_path) -> None:
    from slimforge.compress import quantize_onnx_int8

    shape = (1, 3, 16, 16)
    float_path = export_onnx(conv_net(), shape, tmp_path / "net.onnx")
    calibration = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    int8_path = quantize_onnx_int8(float_path, tmp_path / "net_int8.onnx", calibration)
    e = estimate_energy(int8_path, shape)
    assert e.precision == "int8"
    assert e.energy_mj < estimate_energy(float_path, shape).energy_mj


@pytest.mark.parametrize("precision", ["fp16", "INT8", ""])
def test_unknown_precision_is_refused(precision) -> None:
    with pytest.raises(InvalidInputError, match="fp32, int8"):
        estimate_energy(conv_net(), (1, 3, 8, 8), precision=precision)


def test_estimate_round_trips_through_json() -> None:
    e = estimate_energy(conv_net(), (1, 3, 8, 8))
    assert EnergyEstimate.from_json(e.to_json()) == e


def test_model_is_left_as_it_was() -> None:
    model = conv_net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    estimate_energy(model, (1, 3, 8, 8))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
