"""Diagnostic: evaluate a trained supernet on the 200 seed-0 archs under several BN modes."""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from slimforge.data import load_dataset
from slimforge.supernet import load_supernet, read_accuracy_table, rank_correlations, EvalData
from slimforge.supernet.bn import recalibrate_bn, save_bn_stats, restore_bn_stats

ckpt = sys.argv[1]; seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
modes = sys.argv[3].split(",") if len(sys.argv) > 3 else ["recal256", "batch"]
sn, cfg, _ = load_supernet(ckpt)
space = sn.space
rows = read_accuracy_table("../shared/data/nb201/accuracy_cifar10.csv", space)
picked = [rows[i] for i in np.random.default_rng(seed).choice(len(rows), size=200, replace=False)]
genomes = [g for _, g, _ in picked]; truth = np.array([a for _, _, a in picked])
splits = load_dataset(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
ed = EvalData.from_splits(splits, split="test", recal_images=1024, seed=seed)
X, Y = ed.images, ed.labels
saved = save_bn_stats(sn)
nconv = np.array([sum(1 for o in space.canonical(g) if o in (2, 3)) for g in genomes])
params = np.array([sum(p.numel() for p in space.build(g).parameters()) for g in genomes])

@torch.no_grad()
def acc_loss(genome, mode):
    if mode.startswith("recal"):
        n = int(mode[5:])
        recalibrate_bn(sn, ed.recal_images[:n], forward=lambda x: sn(x, genome), batch_size=64)
        sn.eval()
    elif mode == "batch":
        sn.train()   # batch statistics of each eval batch (stats restored afterwards)
    elif mode == "stale":
        restore_bn_stats(sn, saved); sn.eval()
    c, l = 0, 0.0
    bs = 256 if mode != "batch" else 128
    for xb, yb in zip(X.split(bs), Y.split(bs)):
        lo = sn(xb, genome)
        c += int((lo.argmax(1) == yb).sum()); l += float(torch.nn.functional.cross_entropy(lo, yb, reduction="sum"))
    restore_bn_stats(sn, saved)
    return c / len(Y), l / len(Y)

out = {}
for mode in modes:
    t = time.time()
    res = [acc_loss(g, mode) for g in genomes]
    a = np.array([r[0] for r in res]); l = np.array([r[1] for r in res])
    tau, rho = rank_correlations(a, truth); ltau, lrho = rank_correlations(-l, truth)
    ctau, _ = rank_correlations(a, nconv)
    np.save(ckpt + f"/diag_seed{seed}_{mode}.npy", np.stack([a, l, truth, nconv, params]))
    out[mode] = dict(tau=tau, rho=rho, loss_tau=ltau, loss_rho=lrho, tau_vs_nconv=ctau, mean_acc=float(a.mean()), max_acc=float(a.max()), secs=time.time() - t)
    print(mode, json.dumps(out[mode]), flush=True)
ptau, prho = rank_correlations(params, truth)
print("params", ptau, prho, "nconv tau", rank_correlations(nconv, truth))
json.dump(out, open(ckpt + f"/diag_seed{seed}.json", "w"), indent=1)
