import sys, time, json, shutil, numpy as np, torch
torch.set_num_threads(1)
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.train import train_supernet
name, method, sharing, affine, epochs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
kw = dict(width=0.35, resolution=32, stage_depths=[2, 2, 2, 2, 2, 1])
if sharing != "separate": kw["sharing"] = sharing
cfg = TrainConfig(data="npz:../shared/data/cifar10_subset.npz", epochs=epochs, space="mbv2", space_kwargs=kw, method=method, bn_affine=affine, seed=0)
out = f"runs/diag_mbv2/tr_{name}"; shutil.rmtree(out, ignore_errors=True)
losses = []
t = time.time()
res = train_supernet(cfg, out, progress=lambda p: losses.append(p.loss))
L = np.array(losses); n = len(L)
print(f"{name}: method={method} sharing={sharing} bn_affine={affine} epochs={epochs} steps={n}: loss first 20 {L[:20].mean():.3f}, last 20 {L[-20:].mean():.3f}, final_loss (last epoch mean) {res.final_loss:.3f} ({time.time()-t:.0f} s)", flush=True)
