"""SqueezeNet's Fire module (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size", 2016, §3.2)."""

from __future__ import annotations

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.layers import ActLayer, ConvBnAct

__all__ = ["Fire"]


class Fire(nn.Module):
    """Squeeze 1x1 → (expand 1x1 ‖ expand 3x3), concatenated along channels.

    The squeeze layer narrows the input seen by the 3x3 filters (the paper's strategy 2); the
    expand layers share ``out_chs`` between 1x1 and 3x3 filters according to ``pct_3x3``.

    Args:
        in_chs: input channels.
        out_chs: output channels (expand 1x1 + expand 3x3).
        squeeze_chs: channels of the squeeze layer (the paper's s1x1; keep it below ``out_chs``).
        pct_3x3: fraction of the expand filters that are 3x3 (the paper's pct3x3; 0.5 in SqueezeNet).
        act_layer: activation after every conv.
        norm: add BatchNorm after each conv; the original SqueezeNet has none and uses conv biases.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        squeeze_chs: int,
        pct_3x3: float = 0.5,
        act_layer: str | ActLayer | None = "relu",
        norm: bool = False,
    ) -> None:
        super().__init__()
        e3_chs = round(out_chs * pct_3x3)
        e1_chs = out_chs - e3_chs
        if min(in_chs, squeeze_chs) < 1 or e1_chs < 1 or e3_chs < 1:
            raise InvalidInputError(
                f"Fire(in_chs={in_chs}, out_chs={out_chs}, squeeze_chs={squeeze_chs}, pct_3x3={pct_3x3}) "
                "leaves a layer without channels; use positive channel counts and 0 < pct_3x3 < 1 with "
                "out_chs large enough for both expand layers"
            )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, 1
        self.squeeze = ConvBnAct(in_chs, squeeze_chs, 1, act_layer=act_layer, bias=not norm, norm=norm)
        self.expand1x1 = ConvBnAct(squeeze_chs, e1_chs, 1, act_layer=act_layer, bias=not norm, norm=norm)
        self.expand3x3 = ConvBnAct(squeeze_chs, e3_chs, 3, act_layer=act_layer, bias=not norm, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)
