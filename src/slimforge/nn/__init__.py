"""Building blocks of lightweight networks, with one argument vocabulary.

``in_chs, out_chs, kernel_size, stride, exp_ratio, act_layer, se_ratio`` mean the same thing in
every block (after timm).
"""

from __future__ import annotations

from slimforge.nn.dilated import DilatedConv
from slimforge.nn.fire import Fire
from slimforge.nn.ghost import GhostBottleneck, GhostModule
from slimforge.nn.layers import ACTIVATIONS, ConvBnAct, SqueezeExcite, get_act, make_divisible
from slimforge.nn.mbconv import DepthwiseSeparableConv, DropPath, FusedMBConv, MBConv, make_se
from slimforge.nn.modes import evaluating
from slimforge.nn.residual import BasicBlock
from slimforge.nn.shift import Shift, ShiftConv
from slimforge.nn.shuffle import (
    ChannelShuffle,
    ShuffleV1Unit,
    ShuffleV2Unit,
    ShuffleXceptionUnit,
    channel_shuffle,
)

__all__ = [
    "evaluating",
    "ACTIVATIONS",
    "BasicBlock",
    "ChannelShuffle",
    "ConvBnAct",
    "DepthwiseSeparableConv",
    "DilatedConv",
    "DropPath",
    "Fire",
    "FusedMBConv",
    "GhostBottleneck",
    "GhostModule",
    "MBConv",
    "Shift",
    "ShiftConv",
    "ShuffleV1Unit",
    "ShuffleV2Unit",
    "ShuffleXceptionUnit",
    "SqueezeExcite",
    "channel_shuffle",
    "get_act",
    "make_divisible",
    "make_se",
]
