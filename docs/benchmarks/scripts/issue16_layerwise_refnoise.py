"""Issue 16, layer-wise: how well two standalone references of the same architectures agree (the ceiling).

    .venv/bin/python docs/benchmarks/scripts/issue16_layerwise_refnoise.py REF_DIR_A REF_DIR_B [RANK_JSON...]
Prints τ / ρ (bootstrap 95 %) of reference A's accuracy against B's, and each rank JSON's supernet
accuracy against B (the rank JSON was measured against A).
"""

import json
import sys

from slimforge.estimators._audit import bootstrap_correlation


def results(d):
    return {k: v["accuracy"] * 100 for k, v in json.load(open(f"{d}/reference.json"))["results"].items()}


a, b = results(sys.argv[1]), results(sys.argv[2])
keys = [k for k in a if k in b]
s = bootstrap_correlation("ref", [a[k] for k in keys], [b[k] for k in keys])
print(f"reference A vs B, n={len(keys)}: τ {s.kendall_tau:+.3f} [{s.tau_low:+.2f}, {s.tau_high:+.2f}], "
      f"ρ {s.spearman_rho:+.3f} [{s.rho_low:+.2f}, {s.rho_high:+.2f}]")
print("A:", [round(a[k], 1) for k in keys]); print("B:", [round(b[k], 1) for k in keys])
for f in sys.argv[3:]:
    r = json.load(open(f))
    truth = [b[k] for k in keys]  # the rank JSON lists architectures in the reference's drawing order
    s = bootstrap_correlation("sn", r["supernet_accuracy_pct"], truth)
    p = bootstrap_correlation("params", r["num_params"], truth)
    print(f"{f.rsplit('/', 1)[1]} vs B: τ {s.kendall_tau:+.3f} [{s.tau_low:+.2f}, {s.tau_high:+.2f}]; #params vs B τ {p.kendall_tau:+.3f}")
