"""A parallel worker of the ResNet-20 estimate audit (issue 23, session 2).
# NOTE (added 19:20): it says "the 2111fde snapshot" below, but src_2111fde never existed, so it ran the live working tree /work/main/src as of its start; see runs/notes/issue23.md.

Computes rows of `slimforge compress ... --audit-estimates 20` exactly as audit_estimates does (same code from
the 2111fde snapshot: same header, the same 20 seeded policies, each row's estimates and finetune seeded by
--seed only, so rows are independent of which process computes them) and appends them to the audit's own
audit_progress.jsonl. A policy is claimed by mkdir of <out>/claims/<index>; rows already in the file are
skipped. Afterwards the CLI command is rerun: it finds every row done and only computes the statistics.
usage: audit_worker.py OUT_DIR INDEX...
"""
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from slimforge.compress.auto import _audit as A
from slimforge.compress.auto._budget import parse_budget
from slimforge.compress.auto._common import finetune_model
from slimforge.compress.auto._estimate import estimate_noise
from slimforge.compress.auto._prune import PRUNE_BUDGET_KEYS, PruneOptions, PruneTask
from slimforge.compress.auto._settings import SearchSettings, apply_fields
from slimforge.training import accuracy

out = Path(sys.argv[1]); indices = [int(i) for i in sys.argv[2:]]
progress = out / "audit_progress.jsonl"
settings, options = apply_fields(dict(seed=100, finetune_epochs=3, finetune_lr=0.01, batch_size=64, criterion="l1"),
                                 SearchSettings(), PruneOptions(), what="audit_estimates")
names = ("bn", "bn-fidelity", "kd", "kd-fidelity")
configs = {n: A.ESTIMATES.get(n) for n in names}
budget = parse_budget("macs=0.5", PRUNE_BUDGET_KEYS, what="x", default_key="latency")
header = {"model": "runs/bench23/resnet20", "budget": budget.text, "seed": settings.seed, "policies": 20,
          "finetune_epochs": settings.finetune_epochs, "finetune_lr": settings.finetune_lr,
          "estimates": {k: v.to_dict() for k, v in configs.items()}, "noise": [5, 3]}
done = A._load_progress(progress, header)  # raises if the header differs
task = PruneTask("runs/bench23/resnet20", "npz:../shared/data/cifar10_subset.npz", options)
setup = task.setup(budget, settings)
c = setup.context
drawn = A._draw_policies(setup, 20, settings.seed)
(out / "claims").mkdir(exist_ok=True)
for k in indices:
    genome, cost = drawn[k]
    key = c.space.to_string(genome)
    done = A._load_progress(progress, header)
    if key in done:
        continue
    try:
        os.mkdir(out / "claims" / str(k))
    except FileExistsError:
        continue
    print(f"{time.strftime('%H:%M:%S')} policy {k} {key}", flush=True)
    row = {"policy": key, "cost": cost, "estimates": {}}
    for name, config in configs.items():
        tick = time.perf_counter()
        noise = estimate_noise(lambda g=genome: c.space.build(g, num_classes=1), c.splits, config, settings.seed,
                               repeats=3 if k < 5 else 1, teacher=c.base if config.needs_teacher else None)
        row["estimates"][name] = {**noise.to_dict(), "seconds": (time.perf_counter() - tick) / len(noise.values_pct)}
    net = c.space.build(genome, num_classes=c.splits.num_classes)
    finetune_model(net, c.splits, **settings.train)
    row["val"] = accuracy(net, c.splits.val)
    row["test"] = accuracy(net, c.splits.test) if c.splits.test is not None else float("nan")
    with progress.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{time.strftime('%H:%M:%S')} policy {k} done val {row['val']:.2f} test {row['test']:.2f}", flush=True)
