"""Issue 23: weight BitOps (sum over conv/linear layers of MACs x weight bits) of the auto-bits policies.

The auto_bits record has no BitOps (its budget is bytes); this recomputes them from each record's policy on the
float model: a layer in the policy counts its MACs times its bit-width, any other layer 32 bits. Activations are
not quantized by --auto bits (float32 in all rows), so the activation factor is the same for every row and left
out: the column is a latency proxy for a low-bit accelerator only, since no runtime slimforge measures on has
low-bit convolution kernels.

usage: python issue23_bitops.py MODEL_DIR RECORD.json...
"""

import json
import sys

import torch
from torch import nn

from slimforge.io import load_model

model = load_model(sys.argv[1]).eval()
macs: dict[str, int] = {}


def hook(name):
    def record(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs[name] = output[0].numel() * k
        else:
            macs[name] = module.in_features * module.out_features

    return record


for name, module in model.named_modules():
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        module.register_forward_hook(hook(name))
with torch.no_grad():
    model(torch.zeros(1, 3, 32, 32))
total = sum(macs.values())


def bitops(policy: dict[str, int]) -> float:
    return float(sum(m * policy.get(n, 32) for n, m in macs.items()))


print(f"conv/linear MACs {total:,}; uniform 4-bit weight BitOps {bitops(dict.fromkeys(macs, 4)) / 1e9:.4f} G")
for path in sys.argv[2:]:
    with open(path) as fh:
        d = json.load(fh)
    missing = sorted(set(macs) - set(d["policy"]))
    ratio = bitops(d["policy"]) / bitops(dict.fromkeys(d["policy"], 4))
    print(
        f"{path}: searched {bitops(d['policy']) / 1e9:.4f} G, uniform 4-bit over the same layers "
        f"{bitops(dict.fromkeys(d['policy'], 4)) / 1e9:.4f} G, ratio {ratio:.3f}; MAC-weighted mean bits "
        f"{bitops(d['policy']) / total:.2f}; layers not in the policy (float32): {missing or 'none'}"
    )
