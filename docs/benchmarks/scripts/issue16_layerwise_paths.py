"""Issue 16, layer-wise: does the mbv2 supernet learn on a fixed path vs random paths? (120 SGD steps each; arg "random" runs only the random-path cases). Needs runs/bench16/layerwise/standalone_mbv2_small_n10_e5 (its first architecture)."""
# Diagnostic: does the mbv2 supernet learn when its path is fixed? (supernet vs built net, same 120 steps)
import time, json, numpy as np, torch
torch.set_num_threads(1); torch.manual_seed(0)
from torch import nn
from slimforge.spaces.mbv2 import MBV2Space
d = np.load('../shared/data/cifar10_subset.npz')
x = torch.tensor(d['x_train'], dtype=torch.float32) / 255.; y = torch.tensor(d['y_train'])
m = x.mean((0, 2, 3), keepdim=True); s = x.std((0, 2, 3), keepdim=True); x = (x - m) / s
sp = MBV2Space(width=0.35, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1))
ref = json.load(open('runs/bench16/layerwise/standalone_mbv2_small_n10_e5/reference.json'))
g = sp.from_string(next(iter(ref['results'])))
rng = np.random.default_rng(0)
def run(name, model, fwd, genome_fn, steps=120):
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train(); losses = []; t = time.time()
    g2 = torch.Generator().manual_seed(0)
    for i in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g2)
        opt.zero_grad(); loss = nn.functional.cross_entropy(fwd(model, x[idx], genome_fn()), y[idx]); loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0); opt.step(); losses.append(loss.item())
    print(f"{name}: mean loss steps 1-20 {np.mean(losses[:20]):.3f}, 61-80 {np.mean(losses[60:80]):.3f}, 101-120 {np.mean(losses[100:]):.3f} ({time.time()-t:.0f} s)", flush=True)
import sys
if "random" not in sys.argv: run("built net, fixed genome", sp.build(g, 10), lambda mdl, xb, gg: mdl(xb), lambda: None)
if "random" not in sys.argv: run("supernet, fixed genome", sp.supernet(10), lambda mdl, xb, gg: mdl(xb, gg), lambda: g)
run("supernet, uniform random path (all 7 choices)", sp.supernet(10), lambda mdl, xb, gg: mdl(xb, gg), lambda: sp.sample(rng))
noid = [c for c in range(6)]
run("supernet, random path of blocks only (no identity)", sp.supernet(10), lambda mdl, xb, gg: mdl(xb, gg), lambda: tuple(int(rng.integers(0, 6)) for _ in sp.num_choices))
if 0: run("x", sp.supernet(10), lambda mdl, xb, gg: mdl(xb, gg), lambda: sp.sample(rng))
