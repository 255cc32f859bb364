"""Cost baselines: parameter count and multiply-accumulates (bigger networks tend to train better)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from slimforge.estimators.proxies._base import Proxy

__all__ = ["MacsProxy", "NumParamsProxy"]


class NumParamsProxy(Proxy):
    """Number of parameters: the baseline every zero-cost proxy must beat (Abdelfattah et al., ICLR 2021)."""

    name = "num_params"

    def _score(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator
    ) -> float:
        return float(sum(p.numel() for p in model.parameters()))


class MacsProxy(Proxy):
    """Multiply-accumulates of one image (FLOPs / 2, counted by ``torch.utils.flop_counter``)."""

    name = "macs"

    def _score(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator
    ) -> float:
        model.eval()  # one image: batch statistics would be undefined, and BN cost is not counted anyway
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images[:1])
        return counter.get_total_flops() / 2.0
