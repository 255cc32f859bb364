"""Rank correlation of each estimate with finetuned accuracy from audit_progress.jsonl (finished or partial).

Kendall tau and Spearman rho with 95 % bootstrap intervals (slimforge.estimators.bootstrap_correlation, seed 100,
as the audit), against finetuned validation (380) and test (761) accuracy; noise on the repeated policies.
"""
import json, sys
import numpy as np
from slimforge.estimators import bootstrap_correlation, kendall_tau

path = sys.argv[1]
lines = [json.loads(l) for l in open(path)]
head, rows = lines[0], lines[1:]
import os
final = os.path.join(os.path.dirname(path), "estimate_audit.json")
if os.path.exists(final):  # the audit's own (drawn) order, so the bootstrap resamples match its record
    order = {p: i for i, p in enumerate(json.load(open(final))["policies"])}
    rows.sort(key=lambda r: order[r["policy"]])
val = [r["val"] for r in rows]; test = [r["test"] for r in rows]
print(f"{len(rows)} policies; finetuned val {min(val):.2f}-{max(val):.2f} test {min(test):.2f}-{max(test):.2f}; "
      f"val-vs-test tau {kendall_tau(val, test):+.3f}")
print(f"{'estimate':<12} {'s/pol':>6} {'spread':>6} {'noise':>6} {'draw':>5} {'samp':>5} | "
      f"{'tau val [95%]':>22} {'rho val':>7} | {'tau test [95%]':>22} {'rho test [95%]':>22}")
for name in head["estimates"]:
    per = [r["estimates"][name] for r in rows]
    s = [p["values_pct"][0] for p in per]
    noisy = [p for p in per if len(p["values_pct"]) > 1]
    bv = bootstrap_correlation(name, s, val, seed=100)
    bt = bootstrap_correlation(name, s, test, seed=100)
    d = bt.to_dict() if hasattr(bt, "to_dict") else vars(bt)
    rl, rh = d.get("rho_low"), d.get("rho_high")
    rho_ci = f"[{rl:+.2f},{rh:+.2f}]" if rl is not None else ""
    print(f"{name:<12} {np.mean([p['seconds'] for p in per]):6.1f} {np.std(s, ddof=1):6.2f} "
          f"{np.mean([p['std_pct'] for p in noisy]):6.2f} {np.mean([p['draw_std_pct'] for p in noisy]):5.2f} "
          f"{np.mean([p['sampling_se_pct'] for p in noisy]):5.2f} | "
          f"{bv.kendall_tau:+.3f} [{bv.tau_low:+.2f},{bv.tau_high:+.2f}] {bv.spearman_rho:+.3f} | "
          f"{bt.kendall_tau:+.3f} [{bt.tau_low:+.2f},{bt.tau_high:+.2f}] {bt.spearman_rho:+.3f} {rho_ci}")
print("noise policies:", len([r for r in rows if len(r['estimates']['bn']['values_pct']) > 1]))
