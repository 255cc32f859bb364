"""Issue 21: BO's hypervolume ratio at 100/200/500 against NSGA-II, random and auto on the same seeds.

Reads runs/bench21/bo_<device>_seed<S>.json (one seed per run_bo.sh command) and the 5-seed harness
outputs <algorithm>_<device>.json; prints medians over the seeds BO has finished.
"""

import json
import statistics
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/bench21")
for device in ("onnxruntime", "litert"):
    bo = {}
    for path in sorted(root.glob(f"bo_{device}_seed*.json")):
        run = json.loads(path.read_text())["runs"][0]
        bo[run["seed"]] = run
    seeds = sorted(bo)
    rows = {"bo": bo}
    for name in ("nsga2", "random", "auto"):
        doc = json.loads((root / f"{name}_{device}.json").read_text())
        rows[name] = {r["seed"]: r for r in doc["runs"]}

    def at(run, budget):
        return run["hv_ratio"] if budget == 500 else run["hv_ratio_at"][str(budget)]

    print(f"{device}: seeds {seeds}")
    for name, runs in rows.items():
        cells = [statistics.median(at(runs[s], b) for s in seeds) for b in (100, 200, 500)]
        print(f"  {name:8s} " + "  ".join(f"{c:.3f}" for c in cells))
