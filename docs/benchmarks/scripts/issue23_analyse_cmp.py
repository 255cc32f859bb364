"""Searched minus uniform from runs/bench23/cmp/*.json (auto_prune records): one row per run, mean per budget."""
import glob, json, sys
import numpy as np
pat = sys.argv[1] if len(sys.argv) > 1 else "runs/bench23/cmp/*.json"
by = {}
print("| model | budget | seed | searched test (val) % | MACs | latency ratio | within budget | fill | uniform r | uniform test (val) % | MACs | latency ratio | Δ test (val) pts |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(glob.glob(pat)):
    d = json.load(open(f))
    rows = {r["name"].split()[0]: r for r in d["rows"]}
    o, s, u = rows["original"], rows["searched"], rows.get("uniform")
    lat = lambda r: "-" if r["latency_ms"] is None or o["latency_ms"] is None else f"{r['latency_ms'] / o['latency_ms']:.3f}"
    fill = d.get("fill")
    fl = "-" if not fill else f"{len(fill['steps'])} steps, {fill['cost_before']/1e6 if d['budget_metric']=='macs' else fill['cost_before']:.4g}→{fill['cost_after']/1e6 if d['budget_metric']=='macs' else fill['cost_after']:.4g}"
    dt, dv = s["test_accuracy_pct"] - u["test_accuracy_pct"], s["val_accuracy_pct"] - u["val_accuracy_pct"]
    by.setdefault((d["model"], d["budget"]), []).append((dt, dv))
    print(f"| {d['model']} | {d['budget']} | {d['seed']} | {s['test_accuracy_pct']:.2f} ({s['val_accuracy_pct']:.2f}) | "
          f"{s['macs']/1e6:.2f} M | {lat(s)} | {s['within_budget']} | {fl} | {d['uniform_ratio']:g} | "
          f"{u['test_accuracy_pct']:.2f} ({u['val_accuracy_pct']:.2f}) | {u['macs']/1e6:.2f} M | {lat(u)} | {dt:+.2f} ({dv:+.2f}) |")
print()
for k, v in by.items():
    a = np.array(v)
    print(f"{k}: n={len(v)} mean Δ test {a[:,0].mean():+.2f} (val {a[:,1].mean():+.2f}); searched better on test in {(a[:,0]>0).sum()}/{len(v)}")
