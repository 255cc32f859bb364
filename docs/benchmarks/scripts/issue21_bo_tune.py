"""Issue 21, `bo` tuning harness: one setting of `bo` on NAS-Bench-201, seeds 50-54, both Pi 5 tables.

    python docs/benchmarks/scripts/issue21_bo_tune.py LABEL [key=JSON ...]

Runs `bo` with the given settings for 200 evaluations (hv_ratio at 100 and 200) on seeds 50..54
(tuning seeds; seeds 0-4 are the acceptance seeds, seeds >= 100 are never used), NSGA-II's
figures on the same seeds for comparison come from the label `nsga2` (``algorithm="nsga2"``).
Writes runs/bench21/tune_bo/LABEL.json: per table, the median at 100 and 200 and every seed's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth

DATA = "../shared/data/nb201/"
FIRST, SEEDS = 50, 5


def main(argv: list[str]) -> None:
    label, rest = argv[0], argv[1:]
    settings = {k: json.loads(v) for k, v in (a.split("=", 1) for a in rest)}
    algorithm = settings.pop("algorithm", "bo")
    assert FIRST >= 50 and FIRST + SEEDS <= 100, "tune on seeds 50-99 only"
    out: dict = {"label": label, "algorithm": algorithm, "settings": settings, "seeds": [FIRST, FIRST + SEEDS - 1]}
    for dev in ("onnxruntime", "litert"):
        start = time.time()
        acc, device = DATA + "accuracy_cifar10.csv", DATA + f"device_pi5_{dev}.csv"
        problem = load_tabular_problem(acc, device, ("error", "latency_ms"))
        truth = tabular_truth(problem)
        at100, at200 = [], []
        for seed in range(FIRST, FIRST + SEEDS):
            result = run_tabular_benchmark(
                acc, device, algorithm=algorithm, budget=200, seed=seed, repeats=1,
                settings=settings, problem=problem, truth=truth, checkpoints=(100,),
            )
            run = result.runs[0]
            at100.append(run.hv_ratio_at[100])
            at200.append(run.hv_ratio)
            print(dev, seed, round(at100[-1], 3), round(at200[-1], 3), f"{time.time() - start:.0f}s", flush=True)
        out[dev] = {
            "median_100": float(np.median(at100)),
            "median_200": float(np.median(at200)),
            "per_seed_100": [round(float(h), 4) for h in at100],
            "per_seed_200": [round(float(h), 4) for h in at200],
            "s": time.time() - start,
        }
        print(dev, out[dev], flush=True)
    Path("runs/bench21/tune_bo").mkdir(parents=True, exist_ok=True)
    Path(f"runs/bench21/tune_bo/{label}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
