"""Issue 23: the old whole-range bisection vs the scan + bisection (4ebde95) for the uniform ratio at MACs budgets on ResNet-20 (run from /work/main)."""

import torch

from slimforge.compress.auto import PrunePolicySpace, uniform_ratio_for_budget
from slimforge.compress.prune import prunable_groups
from slimforge.hardware import count_macs
from slimforge.io import load_model

torch.set_num_threads(1)
m = load_model("runs/bench23/resnet20").eval()
shape = (1, 3, 32, 32)
groups, _, ignored = prunable_groups(m, shape)
space = PrunePolicySpace(m, shape, groups, ignored=ignored)
macs0 = count_macs(m, shape)
cost = lambda r: float(count_macs(space.prune(dict.fromkeys(groups, r)), shape)) if r else float(macs0)


def old(cost, bound, high=0.8, it=10):
    if cost(0) <= bound:
        return 0.0
    low = 0.0
    for _ in range(it):
        mid = (low + high) / 2
        low, high = (low, mid) if cost(mid) <= bound else (mid, high)
    return round(high, 4)


for f in (0.5, 0.3):
    b = f * macs0
    o, n = old(cost, b), uniform_ratio_for_budget(cost, b)
    print(f"macs={f}: old {o} ({cost(o) / 1e6:.3f} M)  new {n} ({cost(n) / 1e6:.3f} M)")
