"""Issue 21: the acceptance run of one surrogate variant on seeds 0-4 (run ONCE, after tuning closed).

    python docs/benchmarks/scripts/issue21_auto_surrogate_accept.py LABEL key=JSON ...

Same scoring as `slimforge bench tabular ... --budget 500 --checkpoints 100,200 --seed 0 --repeats 5`
(run_tabular_benchmark), with the variant registered as ``auto_surrogate``. Writes
runs/bench21/tune_surrogate/accept_LABEL.json.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from issue21_auto_surrogate import SurrogateAuto

from slimforge.search.algorithms import ALGORITHMS
from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth

DATA = "../shared/data/nb201/"
label, rest = sys.argv[1], sys.argv[2:]
settings = {k: json.loads(v) for k, v in (a.split("=", 1) for a in rest)}
ALGORITHMS.register("auto_surrogate", SurrogateAuto)
out = {"label": label, "settings": settings, "seeds": [0, 4]}
for dev in ("onnxruntime", "litert"):
    acc, device = DATA + "accuracy_cifar10.csv", DATA + f"device_pi5_{dev}.csv"
    problem = load_tabular_problem(acc, device, ("error", "latency_ms"))
    start = time.time()
    result = run_tabular_benchmark(acc, device, algorithm="auto_surrogate", budget=500, seed=0, repeats=5,
                                   settings=settings, problem=problem, truth=tabular_truth(problem),
                                   checkpoints=(100, 200))
    row = {}
    for k in (100, 200, 500):
        v = np.array([r.hv_ratio_at[k] if k < 500 else r.hv_ratio for r in result.runs])
        row[str(k)] = {"median": float(np.median(v)), "min": float(v.min()), "per_seed": [round(float(x), 4) for x in v]}
    row["s_per_run"] = (time.time() - start) / 5
    out[dev] = row
    print(dev, json.dumps(row), flush=True)
Path(f"runs/bench21/tune_surrogate/accept_{label}.json").write_text(json.dumps(out, indent=1))
