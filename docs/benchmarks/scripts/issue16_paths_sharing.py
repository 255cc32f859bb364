"""Issue 16: does a layer-wise supernet learn with random paths, per weight sharing? 120 SGD steps each.

    .venv/bin/python docs/benchmarks/scripts/issue16_paths_sharing.py mbv2|shufflenet separate|elastic
Same recipe as issue16_layerwise_paths.py (SGD lr 0.025 Nesterov, wd 5e-4, clip 5, batch 64, the same
batches): the supernet on one fixed path (the reference's first architecture) and on a uniformly random
path each step. Mean training loss over steps 1-20, 61-80, 101-120.
"""

import json
import sys
import time

import numpy as np
import torch
from torch import nn

from slimforge.spaces import get_space

torch.set_num_threads(1)
name, sharing = sys.argv[1], sys.argv[2]
options = {
    "mbv2": {"width": 0.35, "resolution": 32, "stage_depths": (2, 2, 2, 2, 2, 1)},
    "shufflenet": {"width": 0.5, "resolution": 32, "stage_depths": (2, 2, 4, 2)},
}[name]
space = get_space(name, **options, sharing=sharing)
d = np.load("../shared/data/cifar10_subset.npz")
x = torch.tensor(d["x_train"], dtype=torch.float32) / 255.0
y = torch.tensor(d["y_train"])
x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
ref = json.load(open(f"runs/bench16/layerwise/standalone_{name}_small_n10_e5/reference.json"))
fixed = space.from_string(next(iter(ref["results"])))


def run(label: str, genome_fn) -> None:
    torch.manual_seed(0)
    model = space.supernet(10)
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    losses, t = [], time.time()
    batches = torch.Generator().manual_seed(0)
    for _ in range(120):
        idx = torch.randint(0, len(x), (64,), generator=batches)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx], genome_fn()), y[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(loss.item())
    print(
        f"{name} {sharing}, {label}: mean loss steps 1-20 {np.mean(losses[:20]):.3f}, 61-80 "
        f"{np.mean(losses[60:80]):.3f}, 101-120 {np.mean(losses[100:]):.3f} ({time.time() - t:.0f} s)",
        flush=True,
    )


rng = np.random.default_rng(0)
run("fixed path", lambda: fixed)
run("uniform random path", lambda: space.sample(rng))
