"""Tests of the shuffle, Fire, shift, dilated and residual blocks on tiny inputs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from slimforge.errors import InvalidInputError
from slimforge.nn.dilated import DilatedConv
from slimforge.nn.fire import Fire
from slimforge.nn.residual import BasicBlock
from slimforge.nn.shift import Shift, ShiftConv, shift_offsets
from slimforge.nn.shuffle import ShuffleV1Unit, ShuffleV2Unit, ShuffleXceptionUnit, channel_shuffle


def _channel_ids(chs: int) -> torch.Tensor:
    """A 1 x chs x 2 x 2 tensor whose every pixel in channel c holds c."""
    return torch.arange(chs, dtype=torch.float32).view(1, chs, 1, 1).expand(1, chs, 2, 2).contiguous()


def _macs(module: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() / 2


@pytest.mark.parametrize("chs,groups", [(6, 3), (12, 4), (8, 2), (5, 1)])
def test_channel_shuffle_is_a_permutation_undone_by_the_inverse_shuffle(chs: int, groups: int) -> None:
    x = _channel_ids(chs)
    y = channel_shuffle(x, groups)
    order = y[0, :, 0, 0].long().tolist()
    assert sorted(order) == list(range(chs))
    per_group = chs // groups
    # Output position i * groups + g holds input channel g * per_group + i (ShuffleNet §3.1).
    assert order == [g * per_group + i for i in range(per_group) for g in range(groups)]
    assert torch.equal(channel_shuffle(y, per_group), x)


def test_channel_shuffle_rejects_indivisible_groups() -> None:
    with pytest.raises(InvalidInputError, match="groups=4"):
        channel_shuffle(torch.zeros(1, 6, 2, 2), 4)


@pytest.mark.parametrize("unit_cls", [ShuffleV2Unit, ShuffleXceptionUnit])
@pytest.mark.parametrize("kernel_size", [3, 5, 7])
def test_split_shuffle_units_stride2_halve_size_and_give_out_chs(unit_cls: type, kernel_size: int) -> None:
    unit = unit_cls(8, 24, kernel_size, stride=2).eval()
    assert unit(torch.randn(2, 8, 16, 16)).shape == (2, 24, 8, 8)
    assert unit(torch.randn(1, 8, 9, 9)).shape == (1, 24, 5, 5)


@pytest.mark.parametrize("unit_cls", [ShuffleV2Unit, ShuffleXceptionUnit])
def test_split_shuffle_units_stride1_keep_shape_and_half_the_channels(unit_cls: type) -> None:
    unit = unit_cls(16, 16, 3).eval()
    x = torch.randn(1, 16, 8, 8)
    y = unit(x)
    assert y.shape == x.shape
    # The untouched half is interleaved by the final shuffle: even output channels are input 0..7.
    assert torch.equal(y[:, 0::2], x[:, :8])


def test_split_shuffle_units_reject_bad_shapes() -> None:
    with pytest.raises(InvalidInputError, match="in_chs"):
        ShuffleV2Unit(16, 32, stride=1)
    with pytest.raises(InvalidInputError, match="out_chs"):
        ShuffleV2Unit(32, 32, stride=2)
    with pytest.raises(InvalidInputError, match="kernel_size=4"):
        ShuffleXceptionUnit(16, 16, kernel_size=4)


def test_shuffle_v1_unit_shapes_and_ungrouped_first_pointwise() -> None:
    down = ShuffleV1Unit(24, 240, stride=2, groups=3, group_first_pw=False).eval()
    assert down.pw1[0].groups == 1 and down.pw2[0].groups == 3
    assert down(torch.randn(1, 24, 8, 8)).shape == (1, 240, 4, 4)
    unit = ShuffleV1Unit(240, 240, groups=3).eval()
    assert unit.pw1[0].groups == 3
    assert unit(torch.randn(1, 240, 4, 4)).shape == (1, 240, 4, 4)
    with pytest.raises(InvalidInputError, match="groups=3"):
        ShuffleV1Unit(24, 100, stride=2, groups=3)


@pytest.mark.parametrize("in_chs,out_chs,squeeze_chs,pct", [(16, 32, 4, 0.5), (8, 20, 3, 0.25)])
def test_fire_concatenates_expand_layers_to_out_chs(
    in_chs: int, out_chs: int, squeeze_chs: int, pct: float
) -> None:
    fire = Fire(in_chs, out_chs, squeeze_chs, pct_3x3=pct)
    assert fire(torch.randn(2, in_chs, 7, 7)).shape == (2, out_chs, 7, 7)
    assert fire.expand3x3[0].out_channels == round(out_chs * pct)
    assert fire.expand1x1[0].out_channels + fire.expand3x3[0].out_channels == out_chs
    assert fire.squeeze[0].out_channels == squeeze_chs
    with pytest.raises(InvalidInputError, match="pct_3x3=1.0"):
        Fire(in_chs, out_chs, squeeze_chs, pct_3x3=1.0)


def test_shift_conv_has_only_the_pointwise_parameters_and_costs() -> None:
    conv = ShiftConv(18, 10, kernel_size=3).eval()
    assert sum(p.numel() for p in Shift(18, 3).parameters()) == 0
    # 1x1 conv weights (no bias) + BN scale and shift.
    assert sum(p.numel() for p in conv.parameters()) == 18 * 10 + 2 * 10
    x = torch.randn(1, 18, 6, 6)
    assert _macs(conv, x) == _macs(conv.conv, x) == 18 * 10 * 6 * 6


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_shift_moves_a_one_hot_pixel_in_every_kernel_direction(kernel_size: int) -> None:
    offsets = shift_offsets(kernel_size)
    chs, size, centre = len(offsets), 7, 3
    x = torch.zeros(1, chs, size, size)
    x[:, :, centre, centre] = 1.0
    y = Shift(chs, kernel_size)(x)
    moves = set()
    for c in range(chs):
        hits = y[0, c].nonzero().tolist()
        assert len(hits) == 1 and y[0, c].sum() == 1.0
        moves.add((centre - hits[0][0], centre - hits[0][1]))
    assert moves == set(offsets)
    assert len(moves) == kernel_size**2


def test_shift_zero_fills_what_moves_in_from_outside() -> None:
    x = torch.ones(1, 9, 4, 4)
    y = Shift(9, 3)(x)
    assert torch.equal(y[:, 0], x[:, 0])  # the centre group is not shifted
    for c, (dy, dx) in enumerate(shift_offsets(3)):
        # A shift by (dy, dx) pushes |dy| rows and |dx| columns out; zeros come in.
        assert y[0, c].sum() == (4 - abs(dy)) * (4 - abs(dx))


def test_shift_conv_exports_to_onnx_and_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    conv = ShiftConv(20, 12, kernel_size=3, stride=2).eval()
    x = torch.randn(2, 20, 9, 9)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(conv, (x,), buf, dynamo=False, opset_version=17, input_names=["x"])
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = conv(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("depthwise", [False, True])
def test_dilated_conv_keeps_the_spatial_size(dilation: int, depthwise: bool) -> None:
    block = DilatedConv(6, 10, kernel_size=3, dilation=dilation, depthwise=depthwise).eval()
    assert block(torch.randn(1, 6, 11, 11)).shape == (1, 10, 11, 11)
    strided = DilatedConv(6, 10, kernel_size=5, stride=2, dilation=dilation, depthwise=depthwise).eval()
    assert strided(torch.randn(1, 6, 12, 12)).shape == (1, 10, 6, 6)


def test_dilated_depthwise_conv_is_depthwise_and_dilated() -> None:
    block = DilatedConv(6, 10, dilation=2, depthwise=True)
    dw = block.conv[0][0]
    assert dw.groups == 6 and dw.dilation == (2, 2)
    assert block.conv[1][0].kernel_size == (1, 1)


def test_basic_block_uses_identity_unless_the_shape_changes() -> None:
    same = BasicBlock(8, 8)
    assert isinstance(same.shortcut, nn.Identity)
    x = torch.randn(2, 8, 8, 8)
    assert same.eval()(x).shape == x.shape
    for block, shape in ((BasicBlock(8, 8, stride=2), (2, 8, 4, 4)), (BasicBlock(8, 16), (2, 16, 8, 8))):
        conv, bn = block.shortcut[0], block.shortcut[1]
        assert conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
        assert block.eval()(x).shape == shape


def test_basic_block_zero_init_last_makes_it_relu_of_the_shortcut() -> None:
    block = BasicBlock(8, 8)
    block.zero_init_last()
    x = torch.randn(1, 8, 6, 6)
    assert torch.equal(block.eval()(x), torch.relu(x))
