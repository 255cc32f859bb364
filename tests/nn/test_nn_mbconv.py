"""Depthwise-separable, MBConv, Fused-MBConv and Ghost blocks: shapes, shortcut rules, SE, stride."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.ghost import GhostBottleneck, GhostModule
from slimforge.nn.layers import SqueezeExcite
from slimforge.nn.mbconv import DepthwiseSeparableConv, DropPath, FusedMBConv, MBConv


def _x(chs: int, size: int = 8, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, chs, size, size, generator=torch.Generator().manual_seed(0))


def _zero_branch_end(block: nn.Module, name: str) -> None:
    """Make the residual branch output exactly zero by zeroing the BatchNorms of its last layer."""
    for m in getattr(block, name).modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)


BLOCKS = {
    "ds": lambda i, o, s, **kw: DepthwiseSeparableConv(i, o, 3, s, **kw),
    "mbconv": lambda i, o, s, **kw: MBConv(i, o, 3, s, exp_ratio=4, **kw),
    "fused": lambda i, o, s, **kw: FusedMBConv(i, o, 3, s, exp_ratio=4, **kw),
}


@pytest.mark.parametrize("kind", sorted(BLOCKS))
@pytest.mark.parametrize("stride", [1, 2])
def test_block_output_shape(kind: str, stride: int) -> None:
    block = BLOCKS[kind](8, 16, stride).eval()
    assert block(_x(8, size=10)).shape == (2, 16, 10 // stride, 10 // stride)


@pytest.mark.parametrize(
    ("kind", "in_chs", "out_chs", "stride", "expected"),
    [
        ("mbconv", 16, 16, 1, True),
        ("mbconv", 16, 24, 1, False),
        ("mbconv", 16, 16, 2, False),
        ("fused", 16, 16, 1, True),
        ("fused", 16, 16, 2, False),
        ("fused", 8, 16, 1, False),
    ],
)
def test_residual_only_when_shapes_match(
    kind: str, in_chs: int, out_chs: int, stride: int, expected: bool
) -> None:
    assert BLOCKS[kind](in_chs, out_chs, stride).has_residual is expected


def test_depthwise_separable_has_no_residual_unless_asked() -> None:
    # MobileNetV1 has 16->16-shaped blocks without a shortcut; EfficientNet's first block asks for one.
    assert not DepthwiseSeparableConv(16, 16).has_residual
    assert DepthwiseSeparableConv(16, 16, residual=True).has_residual
    assert not DepthwiseSeparableConv(16, 16, stride=2, residual=True).has_residual


@pytest.mark.parametrize(
    ("make", "branch_end"),
    [
        (lambda: DepthwiseSeparableConv(8, 8, residual=True, pw_act=False), "conv_pw"),
        (lambda: MBConv(8, 8, exp_ratio=3), "conv_pwl"),
        (lambda: FusedMBConv(8, 8, exp_ratio=3), "conv_pwl"),
        (lambda: GhostBottleneck(8, 8, mid_chs=16), "ghost2"),
    ],
    ids=["ds", "mbconv", "fused", "ghost"],
)
def test_residual_adds_the_input(make, branch_end: str) -> None:
    # With the branch's last BN zeroed the branch outputs 0, so a residual block returns its input.
    block = make()
    _zero_branch_end(block, branch_end)
    x = _x(8)
    torch.testing.assert_close(block.eval()(x), x)


def test_block_without_residual_does_not_add_the_input() -> None:
    block = MBConv(8, 8, exp_ratio=3, residual=False)
    _zero_branch_end(block, "conv_pwl")
    assert not block.has_residual
    torch.testing.assert_close(block.eval()(_x(8)), torch.zeros(2, 8, 8, 8))


def test_mbconv_exp_ratio_one_skips_expansion() -> None:
    block = MBConv(16, 24, exp_ratio=1)
    assert isinstance(block.conv_pw, nn.Identity)
    assert block.mid_chs == 16
    assert block.conv_dw[0].groups == 16


def test_mbconv_expands_and_rounds_to_eight() -> None:
    block = MBConv(24, 24, exp_ratio=88 / 24)
    assert block.mid_chs == 88
    assert block.conv_pw[0].out_channels == 88
    assert MBConv(10, 10, exp_ratio=3).mid_chs == 32  # 30 rounded to a multiple of 8
    assert MBConv(16, 16, mid_chs=40).mid_chs == 40


def test_mbconv_se_sizes_from_input_or_expanded_channels() -> None:
    assert isinstance(MBConv(16, 16, exp_ratio=6).se, nn.Identity)
    efficientnet_se = MBConv(16, 24, exp_ratio=6, se_ratio=0.25, se_base="in").se
    assert isinstance(efficientnet_se, SqueezeExcite)
    assert (efficientnet_se.reduce.in_channels, efficientnet_se.reduce.out_channels) == (96, 4)
    v3_se = MBConv(
        24, 40, 5, 2, mid_chs=72, se_ratio=0.25, se_base="mid", se_divisor=8, se_gate_layer="hsigmoid"
    ).se
    assert v3_se.reduce.out_channels == 24  # make_divisible(72 / 4, 8)
    assert isinstance(v3_se.gate, nn.Hardsigmoid)


def test_se_gates_the_channels() -> None:
    se = MBConv(8, 8, exp_ratio=2, se_ratio=0.25).se.eval()
    x = torch.rand(2, 16, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.5
    gate = se(x) / x
    # One gate value in (0, 1) per sample and channel, shared over space.
    assert torch.all((gate > 0) & (gate < 1))
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))


def test_se_off_and_on_changes_parameter_count() -> None:
    plain = DepthwiseSeparableConv(16, 16)
    with_se = DepthwiseSeparableConv(16, 16, se_ratio=0.25)
    se_params = 16 * 4 + 4 + 4 * 16 + 16
    assert (
        sum(p.numel() for p in with_se.parameters()) - sum(p.numel() for p in plain.parameters()) == se_params
    )


def test_fused_mbconv_exp_ratio_one_is_a_single_conv() -> None:
    block = FusedMBConv(16, 24, 3, 2, exp_ratio=1)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (3, 3) and convs[0].out_channels == 24
    assert block(_x(16)).shape == (2, 24, 4, 4)


def test_fused_mbconv_expands_with_a_full_conv() -> None:
    block = FusedMBConv(8, 8, 3, exp_ratio=4)
    assert block.conv_exp[0].groups == 1 and block.conv_exp[0].out_channels == 32
    assert block.conv_pwl[0].kernel_size == (1, 1)


def test_mbconv_dilation_keeps_spatial_size() -> None:
    assert MBConv(8, 8, 3, 1, exp_ratio=2, dilation=2).eval()(_x(8)).shape == (2, 8, 8, 8)


@pytest.mark.parametrize(
    ("out_chs", "ratio", "primary"),
    [(16, 2, 8), (7, 2, 4), (10, 3, 4)],
)
def test_ghost_module_output_channels(out_chs: int, ratio: int, primary: int) -> None:
    module = GhostModule(6, out_chs, ratio=ratio).eval()
    assert module.primary_conv[0].out_channels == primary
    assert module.cheap_operation[0].groups == primary
    assert module(_x(6)).shape == (2, out_chs, 8, 8)


def test_ghost_module_keeps_the_intrinsic_maps() -> None:
    module = GhostModule(6, 16).eval()
    x = _x(6)
    torch.testing.assert_close(module(x)[:, :8], module.primary_conv(x))


@pytest.mark.parametrize("ratio", [2, 4])
def test_ghost_module_weights_follow_the_paper(ratio: int) -> None:
    # Han et al. 2020, Sec. 3.1: c*n/s weights for the primary 1x1 conv, (s-1)*n/s*d*d for the cheap one,
    # instead of c*n for the 1x1 conv it replaces.
    c, n, d = 32, 64, 3
    weights = sum(p.numel() for p in GhostModule(c, n, ratio=ratio, dw_size=d).parameters() if p.dim() > 1)
    assert weights == c * n // ratio + (ratio - 1) * n // ratio * d * d
    assert weights < c * n


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("se_ratio", [0.0, 0.25])
def test_ghost_bottleneck_shape_and_se(stride: int, se_ratio: float) -> None:
    block = GhostBottleneck(16, 24, 3, stride, mid_chs=48, se_ratio=se_ratio).eval()
    assert block(_x(16, size=8)).shape == (2, 24, 8 // stride, 8 // stride)
    assert isinstance(block.se, SqueezeExcite) is (se_ratio > 0)
    assert isinstance(block.conv_dw, nn.Identity) is (stride == 1)


def test_ghost_bottleneck_shortcut() -> None:
    assert isinstance(GhostBottleneck(16, 16, mid_chs=32).shortcut, nn.Identity)
    projection = GhostBottleneck(16, 24, 3, 2, mid_chs=48).shortcut
    convs = [m for m in projection.modules() if isinstance(m, nn.Conv2d)]
    # Depthwise kxk with the block's stride, then 1x1 to the new width (the reference shortcut).
    assert [(c.groups, c.stride, c.out_channels) for c in convs] == [(16, (2, 2), 16), (1, (1, 1), 24)]


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training() -> None:
    x = torch.ones(64, 4, 2, 2)
    layer = DropPath(0.5)
    torch.testing.assert_close(layer.eval()(x), x)
    out = layer.train()(x)
    per_sample = out.flatten(1)
    # Each sample is either dropped or rescaled by 1/keep, never partly.
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(per_sample.min(1).values == per_sample.max(1).values)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MBConv(8, 8, kernel_size=4),
        lambda: MBConv(0, 8),
        lambda: MBConv(8, 8, exp_ratio=0),
        lambda: MBConv(8, 8, se_ratio=1.5),
        lambda: MBConv(8, 8, se_ratio=0.25, se_base="out"),
        lambda: DepthwiseSeparableConv(8, 8, drop_path_rate=1.0),
        lambda: GhostModule(8, 8, ratio=1),
        lambda: GhostBottleneck(8, 8, stride=3),
    ],
    ids=[
        "even-kernel",
        "zero-chs",
        "zero-exp",
        "se>1",
        "se-base",
        "drop-path",
        "ghost-ratio",
        "ghost-stride",
    ],
)
def test_bad_block_arguments_raise(make) -> None:
    with pytest.raises(InvalidInputError):
        make()


def test_error_names_the_value_and_the_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"kernel_size=4.*odd"):
        MBConv(8, 8, kernel_size=4)
