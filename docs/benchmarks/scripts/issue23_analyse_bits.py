"""Issue 23: mixed precision (compress --auto bits, budget bits=4) minus uniform 4-bit at equal bytes, per seed.

usage: python issue23_analyse_bits.py [GLOB]   (default runs/bench23/cmp/*-bits4-s*.json, auto_bits records)
"""

import glob
import json
import sys

import numpy as np

pattern = sys.argv[1] if len(sys.argv) > 1 else "runs/bench23/cmp/*-bits4-s*.json"
print(
    "| model | seed | searched test (val) % | bytes | avg bits | BitOps (G) | uniform 4-bit test (val) % | bytes "
    "| BitOps (G) | uniform 8-bit test (val) % | float test (val) % | Δ test (val) pts vs 4-bit |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
deltas: dict[str, list[tuple[float, float]]] = {}


def acc(r):
    return f"{r['test_accuracy_pct']:.2f} ({r['val_accuracy_pct']:.2f})"


def bitops(r):
    return "-" if r.get("bitops") is None else f"{r['bitops'] / 1e9:.3f}"


for f in sorted(glob.glob(pattern)):
    with open(f) as fh:
        d = json.load(fh)
    rows = {r["name"]: r for r in d["rows"]}
    s = rows["searched"]
    u4 = next(r for n, r in rows.items() if n.startswith("uniform 4-bit"))
    u8 = next((r for n, r in rows.items() if n.startswith("uniform 8-bit")), None)
    o = next(r for n, r in rows.items() if n.startswith("original"))
    dt = s["test_accuracy_pct"] - u4["test_accuracy_pct"]
    dv = s["val_accuracy_pct"] - u4["val_accuracy_pct"]
    deltas.setdefault(d["model"], []).append((dt, dv))
    print(
        f"| {d['model']} | {d['seed']} | {acc(s)} | {s['bytes']} | {s['avg_weight_bits']:.2f} | {bitops(s)} | "
        f"{acc(u4)} | {u4['bytes']} | {bitops(u4)} | {acc(u8) if u8 else '-'} | {acc(o)} | {dt:+.2f} ({dv:+.2f}) |"
    )
print()
for model, v in deltas.items():
    a = np.array(v)
    print(
        f"{model}: n={len(v)} mean Δ test {a[:, 0].mean():+.2f} (val {a[:, 1].mean():+.2f}); "
        f"searched better on test in {(a[:, 0] > 0).sum()}/{len(v)}"
    )
