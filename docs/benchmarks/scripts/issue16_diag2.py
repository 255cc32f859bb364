"""Eval-protocol variants on a trained supernet: recal sizes, fine-tune steps."""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from slimforge.data import load_dataset, make_loader
from slimforge.supernet import load_supernet, read_accuracy_table, rank_correlations, EvalData
from slimforge.supernet.bn import recalibrate_bn
from slimforge.supernet.standalone import accuracy_of
from slimforge.supernet.train import training_part

ckpt = sys.argv[1]; seed = int(sys.argv[2]); modes = sys.argv[3].split(",")
sn, cfg, _ = load_supernet(ckpt)
space = sn.space
rows = read_accuracy_table("../shared/data/nb201/accuracy_cifar10.csv", space)
picked = [rows[i] for i in np.random.default_rng(seed).choice(len(rows), size=200, replace=False)]
genomes = [g for _, g, _ in picked]; truth = np.array([a for _, _, a in picked])
splits = load_dataset(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
ed = EvalData.from_splits(splits, split="test", recal_images=1024, seed=seed)
loader = make_loader(training_part(splits, cfg), 64, train=True, seed=123)
batches = list(loader.epoch(0))

def run(genome, mode):
    if mode.startswith("scratch"):
        torch.manual_seed(0)
        net = space.build(genome, 10)
        mode = "ft" + mode[7:]
    else:
        net = sn.extract(genome)
    if mode.startswith("ft"):
        steps, lr = mode[2:].split("@") if "@" in mode else (mode[2:], "0.01")
        steps, lr = int(steps), float(lr)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        for x, y in batches[:steps]:
            loss = torch.nn.functional.cross_entropy(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
        recalibrate_bn(net, ed.recal_images[:256], batch_size=64)
    elif mode.startswith("recal"):
        recalibrate_bn(net, ed.recal_images[: int(mode[5:])], batch_size=64)
    return accuracy_of(net, ed)

out = {}
for mode in modes:
    t = time.time()
    res = [run(g, mode) for g in genomes]
    a = np.array([r[0] for r in res]); l = np.array([r[1] for r in res])
    tau, rho = rank_correlations(a, truth); ltau, lrho = rank_correlations(-l, truth)
    np.save(ckpt + f"/diag2_seed{seed}_{mode}.npy", np.stack([a, l, truth]))
    out[mode] = dict(tau=tau, rho=rho, loss_tau=ltau, loss_rho=lrho, mean_acc=float(a.mean()), secs=time.time() - t)
    print(mode, json.dumps(out[mode]), flush=True)
