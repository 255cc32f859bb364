"""Issue 16, layer-wise spaces: the table behind BENCHMARKS (τ, ρ with bootstrap 95 % intervals).

Reads runs/bench16/layerwise/rank_<space>_small_<supernet>_e<E>_ft<K>.json (``supernet rank --json``
against a standalone reference) and prints one markdown row per (supernet, fine-tune) and the #params
baseline, each τ / ρ with the library's percentile bootstrap (1,000 resamples of the architectures,
seed 0: slimforge.estimators._audit.bootstrap_correlation).
    .venv/bin/python docs/benchmarks/scripts/issue16_layerwise_table.py [mbv2 shufflenet]
"""

import glob
import json
import sys

import numpy as np

from slimforge.estimators._audit import bootstrap_correlation

B = "runs/bench16/layerwise"


def fmt(s):
    return (f"{s.kendall_tau:+.3f} [{s.tau_low:+.2f}, {s.tau_high:+.2f}] | "
            f"{s.spearman_rho:+.3f} [{s.rho_low:+.2f}, {s.rho_high:+.2f}]")


def main(spaces):
    for space in spaces:
        files = sorted(glob.glob(f"{B}/rank_{space}_small_*.json"))
        print(f"\n### {space}\n")
        print("| scoring | n | τ [95 % CI] | ρ [95 % CI] | τ by loss | wall s |")
        print("|---|---|---|---|---|---|")
        params_row = None
        for f in files:
            try:
                r = json.load(open(f))
            except (OSError, ValueError):
                continue
            truth = np.array(r["true_accuracy_pct"])
            s = bootstrap_correlation("supernet", r["supernet_accuracy_pct"], truth)
            loss = bootstrap_correlation("loss", -np.array(r["supernet_loss"]), truth)
            name = f.rsplit("/", 1)[1][len(f"rank_{space}_small_"):-5]
            print(f"| {name} | {r['num_architectures']} | {fmt(s)} | {loss.kendall_tau:+.3f} "
                  f"[{loss.tau_low:+.2f}, {loss.tau_high:+.2f}] | {r['wall_time_s']:.0f} |")
            params_row = bootstrap_correlation("params", r["num_params"], truth)
            acc = truth
        if params_row is not None:
            print(f"| #params | {params_row.num_archs} | {fmt(params_row)} | | |")
            print(f"\nstandalone accuracy %: min {acc.min():.1f}, median {np.median(acc):.1f}, max {acc.max():.1f}; "
                  f"sorted {sorted(round(a, 1) for a in acc)}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["mbv2", "shufflenet"])
