"""Issue 16, NB-201 variants on the 12-architecture standalone reference's draw, against the table's truth.

    .venv/bin/python docs/benchmarks/scripts/issue16_nb201_variants_table.py
Rows: the few-shot default (runs/bench16/final_rank_few3_w80_noaff_vs_standalone.json) and each variant of
issue16_nb201_variants.sh; τ with a bootstrap 95 % interval (1,000 resamples of the 12 architectures).
"""

import json
import re
from pathlib import Path

from slimforge.estimators._audit import bootstrap_correlation

rows = {  # label: (rank JSON, training output holding "final_loss")
    "few-shot default (warm-up 0.8, gene 3, affine-free), 15 ep": (
        "runs/bench16/final_rank_few3_w80_noaff_vs_standalone.json", "runs/bench16/few3_w80_noaff.log"),
    "sandwich + in-place distillation (BigNAS, 2 random), affine-free, 15 ep": (
        "runs/bench16/variants/rank_sandwich_e15_vs_standalone.json", "runs/bench16/variants/sandwich_e15.json"),
    "few-shot default + path dropout 0.1": (
        "runs/bench16/variants/rank_droppath_e15_vs_standalone.json", "runs/bench16/variants/droppath_e15.json"),
    "few-shot default, weight decay 5e-5 (÷10)": (
        "runs/bench16/variants/rank_wd_e15_vs_standalone.json", "runs/bench16/variants/wd_e15.json"),
}


def final_loss(path: str) -> str:
    found = re.findall(r'"final_loss": ([0-9.]+)', Path(path).read_text()) if Path(path).exists() else []
    return f"{float(found[-1]):.3f}" if found else "—"


print("| supernet | final loss | top-1 % of the 12 | τ [95 %] | ρ | τ by loss | #params τ |")
print("|---|---|---|---|---|---|---|")
for label, (path, train) in rows.items():
    if not Path(path).exists():
        print(f"| {label} | (not run) |")
        continue
    r = json.loads(Path(path).read_text())
    s = bootstrap_correlation("sn", r["supernet_accuracy_pct"], r["true_accuracy_pct"])
    acc = r["supernet_accuracy_pct"]
    print(f"| {label} | {final_loss(train)} | {min(acc):.1f}–{max(acc):.1f} | {s.kendall_tau:+.2f} [{s.tau_low:+.2f}, {s.tau_high:+.2f}] | "
          f"{r['spearman_rho']:+.2f} | {r['loss_kendall_tau']:+.2f} | {r['params_kendall_tau']:+.2f} |")
