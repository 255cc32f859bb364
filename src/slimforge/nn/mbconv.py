"""Depthwise-separable, inverted-residual (MBConv) and fused inverted-residual blocks.

Papers: MobileNetV1 (Howard et al., 2017), MobileNetV2 (Sandler et al., 2018), MnasNet (Tan et al.,
2019), MobileNetV3 (Howard et al., 2019), EfficientNet (Tan & Le, 2019), EfficientNetV2 (Tan & Le, 2021).

Every block takes the same vocabulary: ``in_chs, out_chs, kernel_size, stride, exp_ratio, act_layer,
se_ratio`` plus the squeeze-excitation options ``se_base, se_divisor, se_act_layer, se_gate_layer``
(the papers disagree on how the SE bottleneck is sized and gated, so all four are explicit).
Every block exposes ``has_residual`` so callers and tests can see whether it adds its input.
"""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct, SqueezeExcite, make_divisible

__all__ = ["DepthwiseSeparableConv", "DropPath", "FusedMBConv", "MBConv", "make_se"]


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name}={value!r} is invalid; pass an integer >= {minimum}")
    return value


def _check_conv_args(in_chs: object, out_chs: object, kernel_size: object, stride: object) -> None:
    _check_int("in_chs", in_chs)
    _check_int("out_chs", out_chs)
    if _check_int("kernel_size", kernel_size) % 2 == 0:
        raise InvalidInputError(
            f"kernel_size={kernel_size!r} is even; pass an odd kernel size (3, 5, 7) so padding keeps the size"
        )
    _check_int("stride", stride)


def _check_rate(name: str, value: object, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < upper:
        raise InvalidInputError(f"{name}={value!r} is invalid; pass a number in [0, {upper})")
    return float(value)


def make_se(
    chs: int,
    base_chs: int,
    se_ratio: float,
    se_divisor: int = 1,
    se_act_layer: str | ActLayer | None = "relu",
    se_gate_layer: str | ActLayer = "sigmoid",
) -> nn.Module:
    """Squeeze-excitation gating ``chs`` channels, or identity when ``se_ratio`` is 0.

    Args:
        chs: channels of the gated tensor.
        base_chs: channels the bottleneck width is a fraction of (EfficientNet/MnasNet: the block
            input; MobileNetV3/GhostNet: the expanded channels).
        se_ratio: bottleneck width as a fraction of ``base_chs``; 0 disables SE.
        se_divisor: round the bottleneck width to a multiple of this (MobileNetV3: 8, GhostNet: 4).
        se_act_layer: bottleneck activation.
        se_gate_layer: gate (sigmoid; hard-sigmoid in MobileNetV3/GhostNet).
    """
    if isinstance(se_ratio, bool) or not isinstance(se_ratio, (int, float)) or not 0.0 <= se_ratio <= 1.0:
        raise InvalidInputError(
            f"se_ratio={se_ratio!r} is invalid; pass a fraction in [0, 1] (0 disables SE)"
        )
    if se_ratio == 0:
        return nn.Identity()
    _check_int("se_divisor", se_divisor)
    rd_chs = make_divisible(base_chs * se_ratio, se_divisor, min_value=1)
    return SqueezeExcite(chs, rd_chs, act_layer=se_act_layer, gate_layer=se_gate_layer)


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., 2016): drop a residual branch per sample while training.

    Used by EfficientNet ("drop connect"). Draws from torch's generator like ``nn.Dropout``; identity
    in eval mode, so exported models do not contain it.
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = _check_rate("drop_path_rate", rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class _ResidualBlock(nn.Module):
    """What every block here shares: checked arguments, SE sized by the shared options, and a residual
    (with stochastic depth) added when asked for and the shapes match."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, drop_path_rate: float) -> None:
        super().__init__()
        _check_conv_args(in_chs, out_chs, kernel_size, stride)
        _check_rate("drop_path_rate", drop_path_rate)

    @staticmethod
    def _se(
        chs: int,
        in_chs: int,
        se_base: str,
        act_layer: str | ActLayer | None,
        se_ratio: float,
        se_divisor: int,
        se_act_layer: str | ActLayer | None,
        se_gate_layer: str | ActLayer,
    ) -> nn.Module:
        """SE gating ``chs`` channels, sized from ``in_chs`` or ``chs`` by ``se_base``; ``se_act_layer=None``
        reuses the block's ``act_layer``."""
        act = act_layer if se_act_layer is None else se_act_layer
        return make_se(chs, _se_base_chs(se_base, in_chs, chs), se_ratio, se_divisor, act, se_gate_layer)

    def _set_residual(self, residual: bool, stride: int, in_chs: int, out_chs: int, drop_path_rate: float) -> None:
        self.has_residual = residual and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if self.has_residual else nn.Identity()

    def _add_residual(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(out) if self.has_residual else out


class DepthwiseSeparableConv(_ResidualBlock):
    """Depthwise kxk conv-BN-act, optional SE, pointwise 1x1 conv-BN-act (MobileNetV1).

    With ``pw_act=False`` and ``residual=True`` it is the first block of MnasNet/EfficientNet (an MBConv
    without expansion: linear projection, identity shortcut when shapes match).

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: depthwise kernel size (odd).
        stride: depthwise stride.
        act_layer: activation after the depthwise conv (and after the pointwise one if ``pw_act``).
        se_ratio: SE bottleneck as a fraction of ``in_chs``; 0 disables SE.
        pw_act: activate the pointwise output (MobileNetV1) or keep it linear (MnasNet, EfficientNet).
        residual: add the input when ``stride == 1`` and ``in_chs == out_chs``. Off by default, as in
            MobileNetV1.
        se_divisor, se_act_layer, se_gate_layer: see :func:`make_se`; ``se_act_layer=None`` reuses
            ``act_layer``.
        drop_path_rate: stochastic depth rate of the residual branch.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        act_layer: str | ActLayer | None = "relu",
        se_ratio: float = 0.0,
        pw_act: bool = True,
        residual: bool = False,
        se_divisor: int = 1,
        se_act_layer: str | ActLayer | None = None,
        se_gate_layer: str | ActLayer = "sigmoid",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chs, out_chs, kernel_size, stride, drop_path_rate)
        self.conv_dw = ConvBnAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, act_layer=act_layer)
        self.se = self._se(in_chs, in_chs, "in", act_layer, se_ratio, se_divisor, se_act_layer, se_gate_layer)
        self.conv_pw = ConvBnAct(in_chs, out_chs, 1, act_layer=act_layer if pw_act else None)
        self._set_residual(residual, stride, in_chs, out_chs, drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pw(self.se(self.conv_dw(x)))
        return self._add_residual(x, out)


class MBConv(_ResidualBlock):
    """Inverted residual with linear bottleneck (MobileNetV2), optionally with SE (MnasNet, MobileNetV3,
    EfficientNet): 1x1 expansion-BN-act, depthwise kxk-BN-act, SE, 1x1 projection-BN (no activation).

    The expansion conv is left out when the expanded width equals ``in_chs`` (``exp_ratio == 1``).

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: depthwise kernel size (odd).
        stride: depthwise stride.
        exp_ratio: expanded width as a multiple of ``in_chs``, rounded to a multiple of 8 as the
            reference code does (ignored when ``mid_chs`` is given).
        act_layer: activation of the expansion and depthwise convs (relu, relu6, hswish, swish, ...).
        se_ratio: SE bottleneck as a fraction of the ``se_base`` channels; 0 disables SE.
        mid_chs: expanded width given directly (MobileNetV3 and GhostNet tables list it per block).
        se_base: ``"in"`` sizes the SE bottleneck from ``in_chs`` (EfficientNet, MnasNet), ``"mid"`` from
            the expanded channels (MobileNetV3).
        se_divisor, se_act_layer, se_gate_layer: see :func:`make_se`; ``se_act_layer=None`` reuses
            ``act_layer``.
        residual: add the input when ``stride == 1`` and ``in_chs == out_chs`` (on by default).
        dilation: depthwise dilation.
        drop_path_rate: stochastic depth rate of the residual branch (EfficientNet).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 6.0,
        act_layer: str | ActLayer | None = "relu6",
        se_ratio: float = 0.0,
        mid_chs: int | None = None,
        se_base: str = "in",
        se_divisor: int = 1,
        se_act_layer: str | ActLayer | None = None,
        se_gate_layer: str | ActLayer = "sigmoid",
        residual: bool = True,
        dilation: int = 1,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chs, out_chs, kernel_size, stride, drop_path_rate)
        mid = _mid_chs(in_chs, exp_ratio, mid_chs)
        self.conv_pw = ConvBnAct(in_chs, mid, 1, act_layer=act_layer) if mid != in_chs else nn.Identity()
        self.conv_dw = ConvBnAct(
            mid,
            mid,
            kernel_size,
            stride,
            groups=mid,
            dilation=_check_int("dilation", dilation),
            act_layer=act_layer,
        )
        self.se = self._se(mid, in_chs, se_base, act_layer, se_ratio, se_divisor, se_act_layer, se_gate_layer)
        self.conv_pwl = ConvBnAct(mid, out_chs, 1, act_layer=None)
        self.mid_chs = mid
        self._set_residual(residual, stride, in_chs, out_chs, drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return self._add_residual(x, out)


class FusedMBConv(_ResidualBlock):
    """Fused inverted residual (EfficientNetV2): kxk expansion conv-BN-act, optional SE, 1x1 projection-BN.

    With ``exp_ratio == 1`` the block is a single kxk conv-BN-act from ``in_chs`` to ``out_chs``, as in
    the EfficientNetV2 reference.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel_size: expansion conv kernel size (odd).
        stride: expansion conv stride.
        exp_ratio: expanded width as a multiple of ``in_chs`` (rounded to a multiple of 8).
        act_layer: activation (EfficientNetV2 uses swish).
        se_ratio: SE bottleneck as a fraction of the ``se_base`` channels; 0 (the default) disables SE.
        mid_chs: expanded width given directly.
        se_base, se_divisor, se_act_layer, se_gate_layer: as in :class:`MBConv`.
        residual: add the input when ``stride == 1`` and ``in_chs == out_chs`` (on by default).
        drop_path_rate: stochastic depth rate of the residual branch.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        exp_ratio: float = 4.0,
        act_layer: str | ActLayer | None = "swish",
        se_ratio: float = 0.0,
        mid_chs: int | None = None,
        se_base: str = "in",
        se_divisor: int = 1,
        se_act_layer: str | ActLayer | None = None,
        se_gate_layer: str | ActLayer = "sigmoid",
        residual: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chs, out_chs, kernel_size, stride, drop_path_rate)
        mid = _mid_chs(in_chs, exp_ratio, mid_chs)
        # No expansion: the reference collapses the block into one conv that keeps the activation.
        width = out_chs if mid == in_chs else mid
        self.conv_exp = ConvBnAct(in_chs, width, kernel_size, stride, act_layer=act_layer)
        self.se = self._se(width, in_chs, se_base, act_layer, se_ratio, se_divisor, se_act_layer, se_gate_layer)
        self.conv_pwl: nn.Module = (
            nn.Identity() if mid == in_chs else ConvBnAct(mid, out_chs, 1, act_layer=None)
        )
        self.mid_chs = mid
        self._set_residual(residual, stride, in_chs, out_chs, drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pwl(self.se(self.conv_exp(x)))
        return self._add_residual(x, out)


def _mid_chs(in_chs: int, exp_ratio: float, mid_chs: int | None) -> int:
    if mid_chs is not None:
        return _check_int("mid_chs", mid_chs)
    if isinstance(exp_ratio, bool) or not isinstance(exp_ratio, (int, float)) or exp_ratio <= 0:
        raise InvalidInputError(
            f"exp_ratio={exp_ratio!r} is invalid; pass a positive number such as 1, 3, 4 or 6"
        )
    if exp_ratio == 1:
        return in_chs
    return make_divisible(in_chs * exp_ratio, 8)


def _se_base_chs(se_base: str, in_chs: int, mid_chs: int) -> int:
    if se_base == "in":
        return in_chs
    if se_base == "mid":
        return mid_chs
    raise InvalidInputError(
        f"se_base={se_base!r} is invalid; pass 'in' (EfficientNet/MnasNet) or 'mid' (MobileNetV3)"
    )
