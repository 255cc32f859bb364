"""Issue 16: separate vs elastic layer-wise supernets against two standalone references and their mean.

    .venv/bin/python docs/benchmarks/scripts/issue16_elastic_table.py mbv2|shufflenet
Reads runs/bench16/layerwise/ (the seed-0 and seed-1 references, the separate supernets' ranks) and
runs/bench16/elastic/ (issue16_elastic.sh). Every rank JSON lists its architectures in the reference's
drawing order, so its supernet accuracies line up with any reference of the same 10 architectures.
"""

import json
import sys
from pathlib import Path

from slimforge.estimators._audit import bootstrap_correlation

name = sys.argv[1]
L, E = Path("runs/bench16/layerwise"), Path("runs/bench16/elastic")


def reference(d: Path) -> list[float]:
    results = json.loads((d / "reference.json").read_text())["results"]
    return [v["accuracy"] * 100 for v in results.values()]


a = reference(L / f"standalone_{name}_small_n10_e5")
b = reference(L / f"standalone_{name}_small_n10_e5_ts1")
refs = {"seed 0": a, "seed 1": b, "mean of both": [(x + y) / 2 for x, y in zip(a, b)]}
rows = {
    "separate, few-shot default": L / f"rank_{name}_small_default_e10_ft0.json",
    "separate, SPOS-affine": L / f"rank_{name}_small_spos_aff_e10_ft0.json",
    "elastic, few-shot default": E / f"rank_{name}_default_e10_ref_ts0.json",
    "elastic, SPOS-affine": E / f"rank_{name}_spos_aff_e10_ref_ts0.json",
}


def cell(x: list[float], y: list[float]) -> str:
    s = bootstrap_correlation("x", x, y)
    return f"{s.kendall_tau:+.2f} [{s.tau_low:+.2f}, {s.tau_high:+.2f}]"


print(f"{name}: 10 architectures; τ [bootstrap 95 %] against each reference")
print("| estimator | top-1 % (range) | " + " | ".join(refs) + " |")
print("|---|---|" + "---|" * len(refs))
print("| standalone seed 1 vs seed 0 | — | " + cell(b, a) + " | — | — |")
params = None
for label, path in rows.items():
    if not path.exists():
        print(f"| {label} | (not run: {path}) |")
        continue
    r = json.loads(path.read_text())
    acc = r["supernet_accuracy_pct"]
    params = r["num_params"]
    cells = " | ".join(cell(acc, ref) for ref in refs.values())
    print(f"| {label} | {min(acc):.1f}–{max(acc):.1f} | {cells} |")
if params is not None:
    print("| #parameters | — | " + " | ".join(cell(params, ref) for ref in refs.values()) + " |")
