"""Compare tune_surrogate results with the shipped `auto` on seeds 50-99 (paired mean difference)."""
import json
import sys

import numpy as np

base = json.load(open("runs/bench21/tune_surrogate/s_base.json"))
for label in sys.argv[1:]:
    r = json.load(open(f"runs/bench21/tune_surrogate/{label}.json"))
    line = f"{label:34s}"
    for dev in ("onnxruntime", "litert"):
        a, b = np.array(r[dev]["per_seed"]), np.array(base[dev]["per_seed"])
        d = a - b
        line += f"| {np.median(a):.3f} ({a.min():.3f}), {a.mean():.3f}, {(a < 0.99).sum():2d} [{d.mean():+.3f}±{d.std(ddof=1)/np.sqrt(len(d)):.3f}] {r[dev]['s']/50:.2f}s/run "
    print(line)
