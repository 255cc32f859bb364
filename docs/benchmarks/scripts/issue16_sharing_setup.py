import time, json, sys, numpy as np, torch
torch.set_num_threads(1); torch.manual_seed(0)
from torch import nn
from slimforge.spaces.mbv2 import MBV2Space
d = np.load('../shared/data/cifar10_subset.npz')
x = torch.tensor(d['x_train'], dtype=torch.float32) / 255.; y = torch.tensor(d['y_train'])
m = x.mean((0, 2, 3), keepdim=True); s = x.std((0, 2, 3), keepdim=True); x = (x - m) / s
sp = MBV2Space(width=0.35, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1))
ref = json.load(open('runs/bench16/layerwise/standalone_mbv2_small_n10_e5/reference.json'))
g = sp.from_string(next(iter(ref['results'])))
def run(name, model, genome_fn, steps=120, lr=0.025, clip=5.0, wd=5e-4, mom=0.9, none=True, log=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mom, nesterov=mom>0, weight_decay=wd)
    model.train(); losses = []; gns=[]; lstd=[]; t = time.time()
    g2 = torch.Generator().manual_seed(0)
    for i in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g2)
        opt.zero_grad(set_to_none=none); out = model(x[idx], genome_fn()); loss = nn.functional.cross_entropy(out, y[idx]); loss.backward()
        gn = nn.utils.clip_grad_norm_(model.parameters(), clip if clip else 1e9); opt.step(); losses.append(loss.item()); gns.append(gn.item()); lstd.append(out.std().item())
        if log: log(i, model)
    print(f"{name}: loss 1-20 {np.mean(losses[:20]):.3f}, 61-80 {np.mean(losses[60:80]):.3f}, 101-120 {np.mean(losses[100:]):.3f} | gradnorm median 1-20 {np.median(gns[:20]):.2f} 101-120 {np.median(gns[100:]):.2f} frac clipped {np.mean(np.array(gns)>clip) if clip else 0:.2f} | logit std 1-20 {np.mean(lstd[:20]):.3f} 101-120 {np.mean(lstd[100:]):.3f} ({time.time()-t:.0f} s)", flush=True)
    return losses
