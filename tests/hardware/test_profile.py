"""Profiler: MACs/FLOPs, peak activation memory (MCUNet definition), per-layer table, ONNX analysis."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from slimforge.errors import InputShapeError, ModelFileError
from slimforge.hardware import (
    LiveTensor,
    ModelProfile,
    count_flops,
    count_macs,
    export_onnx,
    peak_activation_bytes,
    peak_live_bytes,
    profile_model,
)
from slimforge.hardware.onnx_graph import analyse_onnx
from slimforge.zoo import create_model


pytestmark = pytest.mark.usefixtures("one_thread")


class Chain(nn.Module):
    """conv(3→4, 3×3) → relu (in place) → conv(4→2, 1×1): liveness is easy to work out by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x)))


class Residual(nn.Module):
    """y = conv2(conv1(x)) + x with no activations: the skip keeps x alive across both convs."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, c, 1, bias=False)
        self.fc = nn.Linear(c, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x)) + x
        return self.fc(y.mean((2, 3)))


def test_peak_live_bytes_takes_the_max_over_steps() -> None:
    tensors = [LiveTensor(10, 0, 1), LiveTensor(20, 1, 2), LiveTensor(5, 2, 3)]
    assert peak_live_bytes(tensors, 4) == (30, 1)
    assert peak_live_bytes([], 3) == (0, 0)


def test_chain_peak_matches_hand_count() -> None:
    # step 0 conv1: input (3·8·8·4 B) + conv1 out (4·8·8·4 B); relu is in place;
    # step 2 conv2: conv1 out + conv2 out (2·8·8·4 B). The input is dead after step 0.
    inp, mid, out = 3 * 64 * 4, 4 * 64 * 4, 2 * 64 * 4
    assert peak_activation_bytes(Chain(), (1, 3, 8, 8)) == max(inp + mid, mid + out)


def test_residual_peak_keeps_the_skip_alive_and_matches_the_onnx_graph(tmp_path) -> None:
    model = Residual()
    x, mid = 4 * 36 * 4, 8 * 36 * 4
    # conv2 step: x (skip) + conv1 out + conv2 out; the add: x + conv2 out + sum.
    expected = max(x + mid, x + mid + x, 3 * x)
    assert peak_activation_bytes(model, (1, 4, 6, 6)) == expected
    path = export_onnx(model, (1, 4, 6, 6), tmp_path / "res.onnx")
    assert peak_activation_bytes(path, (1, 4, 6, 6)) == expected


def test_views_and_chunks_share_their_storage() -> None:
    class Split(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = x.chunk(2, dim=1)  # views of x: no new memory
            return torch.cat([b, a], dim=1)

    # x alive with the concatenation's output: 2 × 4·4·4·4 bytes.
    assert peak_activation_bytes(Split(), (1, 4, 4, 4)) == 2 * 4 * 16 * 4


def test_macs_are_half_the_flops_and_match_the_formula() -> None:
    model = Chain()
    macs = 4 * 8 * 8 * 3 * 3 * 3 + 2 * 8 * 8 * 4
    assert count_macs(model, (1, 3, 8, 8)) == macs
    assert count_flops(model, "1x3x8x8") == 2 * macs


def test_profile_table_is_consistent_with_the_totals() -> None:
    model = Residual()
    profile = profile_model(model, (1, 4, 6, 6), measure_latency=False, weight_bits=8, top_k=2)
    assert profile.source == "pytorch"
    assert profile.num_params == sum(p.numel() for p in model.parameters())
    assert profile.model_size_bytes == math.ceil(profile.num_params * 8 / 8)
    assert profile.flops == 2 * profile.macs
    assert sum(layer.macs for layer in profile.layers) == profile.macs
    assert sum(layer.macs_share for layer in profile.layers) == pytest.approx(1.0)
    by_name = {layer.name: layer for layer in profile.layers}
    assert set(by_name) >= {"conv1", "conv2", "fc"}
    conv1 = by_name["conv1"]
    assert conv1.output_shape == (1, 8, 6, 6)
    assert conv1.macs == 8 * 36 * 4 * 9
    assert conv1.weight_bytes == 4 * 8 * 9  # 8-bit weights
    moved = conv1.weight_bytes + conv1.input_act_bytes + conv1.output_act_bytes
    assert conv1.intensity_macs_per_byte == pytest.approx(conv1.macs / moved)
    dominant = [layer.name for layer in profile.layers if layer.dominant]
    assert sorted(dominant) == sorted(sorted(by_name, key=lambda n: -by_name[n].macs)[:2])
    assert profile.latency is None


def test_profile_restores_the_model_and_round_trips_json() -> None:
    model = Residual().train()
    model.conv2.eval()
    profile = profile_model(model, (2, 4, 6, 6), measure_latency=False)
    assert model.training and not model.conv2.training and model.conv1.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert profile.analysis_shape == (1, 4, 6, 6) and profile.input_shape == (2, 4, 6, 6)
    assert any("batch 1" in note for note in profile.notes)
    assert ModelProfile.from_json(profile.to_json()) == profile


@pytest.mark.parametrize("shape", [(1, 3, 8), (1, 1, 8, 8), (1, 3, 1, 1, 1)])
def test_shapes_the_model_cannot_take_raise(shape) -> None:
    with pytest.raises(InputShapeError, match="input"):
        profile_model(Chain(), shape, measure_latency=False)


def test_too_small_input_names_the_expected_shape() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 5), nn.MaxPool2d(3))
    with pytest.raises(InputShapeError, match=r"N×3×H×W"):
        count_macs(model, (1, 3, 4, 4))


def test_onnx_counter_agrees_with_flop_counter_on_a_zoo_model(tmp_path) -> None:
    model = create_model("mobilenet_v2", num_classes=10, width=0.35)
    path = export_onnx(model, (1, 3, 32, 32), tmp_path / "m.onnx")
    onnx_profile = profile_model(path, None, measure_latency=False)
    torch_macs = count_macs(model, (1, 3, 32, 32))
    assert onnx_profile.source == "onnx" and onnx_profile.input_shape == (1, 3, 32, 32)
    assert onnx_profile.macs == torch_macs
    # BatchNorm is folded into the convolutions by the exporter: fewer parameters, never more.
    assert 0 < onnx_profile.num_params < sum(p.numel() for p in model.parameters())
    assert onnx_profile.peak_act_bytes > 0 and onnx_profile.peak_act_layer
    assert ModelProfile.from_json(onnx_profile.to_json()) == onnx_profile


def _save(graph: onnx.GraphProto, path) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return str(path)


def test_onnx_gemm_and_matmul_macs(tmp_path) -> None:
    w = numpy_helper.from_array(np.ones((5, 4), np.float32), "w")
    m = numpy_helper.from_array(np.ones((4, 6), np.float32), "m")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w"], ["g"], transB=1),  # (2,4)·(4,5): 2·5·4 MACs
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("MatMul", ["r", "m"], ["y"]),  # (2,1,4)·(4,6): 2·6·4 MACs
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [2, 5]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 6]),
        ],
        [w, m, numpy_helper.from_array(np.array([2, 1, 4], np.int64), "shape")],
    )
    analysis = analyse_onnx(_save(graph, tmp_path / "mm.onnx"))
    assert analysis.macs == 2 * 5 * 4 + 2 * 6 * 4
    assert analysis.num_params == 20 + 24  # the int64 shape constant is not a parameter


def test_onnx_without_static_shapes_says_peak_is_not_available(tmp_path) -> None:
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [
            helper.make_tensor_value_info("nz", TensorProto.INT64, [2, "n"]),  # data-dependent size
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
        ],
    )
    profile = profile_model(_save(graph, tmp_path / "nz.onnx"), None, measure_latency=False)
    assert profile.peak_act_bytes is None
    assert any("peak activation memory not available" in note for note in profile.notes)
    assert profile.macs == 0  # no Conv/Gemm/MatMul: known to be zero, not unknown
    with pytest.raises(ModelFileError, match="not available"):
        peak_activation_bytes(tmp_path / "nz.onnx", (1, 4))


def test_onnx_input_shape_is_checked_against_the_graph(tmp_path) -> None:
    path = export_onnx(Chain(), (1, 3, 8, 8), tmp_path / "c.onnx")
    with pytest.raises(InputShapeError, match="1x3x8x8"):
        profile_model(path, (1, 3, 16, 16), measure_latency=False)
    with pytest.raises(InputShapeError, match="rank 3"):
        profile_model(path, (1, 3, 8), measure_latency=False)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", bytes(range(256))])
def test_non_onnx_file_raises_naming_the_file(tmp_path, content) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="junk.onnx"):
        profile_model(path, (1, 3, 8, 8), measure_latency=False)
