"""Issue 21 item 4: the test accuracy of the teacher the demo's retraining distils from — each DNAS
supernet's largest sub-network, BN re-estimated on ``accuracy.bn_images`` training images as the
retrain stage does — beside the retrained accuracy of the derived network (from the bench logs).

    python docs/benchmarks/scripts/issue21_dnas_teachers.py RUNS_DIR LOG [LOG ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median

import torch

from slimforge.cli._demo import DEMO_CONFIG
from slimforge.data import load_dataset, sample_batch
from slimforge.runs import RunConfig
from slimforge.supernet import load_supernet, recalibrate_bn
from slimforge.supernet.sandwich import size_extremes
from slimforge.training import accuracy


def main(runs: str, logs: list[str]) -> None:
    torch.set_num_threads(1)
    demo = RunConfig.from_dict(DEMO_CONFIG)
    rows = [json.loads(line) | {"method": Path(log).stem} for log in logs
            for line in Path(log).read_text().splitlines() if line.startswith("{")]
    out = []
    for r in rows:
        run = Path(runs) / f"{r['method']}-hard-project-auto-s{r['seed']}-{r['limit_ms']:.3f}"
        splits = load_dataset("npz:../shared/data/cifar10_subset.npz", val_fraction=0.1, seed=r["seed"])
        supernet, _, _ = load_supernet(run)
        teacher = supernet.extract(size_extremes(supernet.space)[0]).eval()
        recalibrate_bn(teacher, sample_batch(splits.train, demo.accuracy.bn_images, seed=r["seed"])[0])
        out.append({**{k: r[k] for k in ("method", "seed", "limit_ms", "retrained_acc")},
                    "teacher_acc": accuracy(teacher, splits.test)})
        print(json.dumps(out[-1]), flush=True)
    teachers = [o["teacher_acc"] for o in out]
    gaps = [o["retrained_acc"] - o["teacher_acc"] for o in out]
    print(f"teacher accuracy median {median(teachers):.1f} % ({min(teachers):.1f}-{max(teachers):.1f}); "
          f"retrained minus teacher median {median(gaps):+.1f} points over {len(out)} runs")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
