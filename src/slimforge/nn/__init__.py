"""Building blocks of lightweight networks, with one argument vocabulary."""

from __future__ import annotations

from slimforge.nn.layers import ACTIVATIONS, ConvBnAct, SqueezeExcite, get_act, make_divisible

__all__ = ["ACTIVATIONS", "ConvBnAct", "SqueezeExcite", "get_act", "make_divisible"]
