"""Issue 21, `auto` tuning harness: one variant of `auto` on NAS-Bench-201 seeds 50-99, both Pi 5 tables.

    python docs/benchmarks/scripts/issue21_auto_tune.py LABEL [--surrogate] [--curve] [--pcts E,L] [key=JSON ...]

Runs ``auto_variants`` (issue21_auto_variants_auto.py: the `auto` of the tuning with its
experimental settings, all off by default) at 500 evaluations on seeds 50..99 (refuses any other
seed: seeds 0-4 are the acceptance seeds, seeds >= 100 are never used) and writes
runs/bench21/tune/LABEL.json with the median, minimum, mean, the number of seeds below 0.99 and
every seed's hv_ratio, per table. ``--pcts E,L`` sets a per-objective focus percentile (error,
latency) in place of ``focus_percentile``. ``--curve`` runs 1,500 evaluations instead and reports
the median and the number of seeds at >= 0.99 after 500, 600, 700, 800, 1000, 1200 and 1500
(runs/bench21/tune/curve_LABEL.json): how many evaluations the target needs. ``--surrogate`` runs
the surrogate-screened variants instead (issue21_auto_surrogate.py's ``SurrogateAuto``, whose
defaults are the shipped `auto` too; output under runs/bench21/tune_surrogate/).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from issue21_auto_surrogate import SurrogateAuto
from issue21_auto_variants import VariantPLS
from issue21_auto_variants_auto import VariantAuto

from slimforge.search.algorithms import ALGORITHMS
from slimforge.search.algorithms._base import objective_matrix
from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth

DATA = "../shared/data/nb201/"
FIRST, SEEDS = 50, 50
CURVE = [500, 600, 700, 800, 1000, 1200, 1500]


def main(argv: list[str]) -> None:
    label, rest = argv[0], argv[1:]
    curve, surrogate = "--curve" in rest, "--surrogate" in rest
    rest = [a for a in rest if a not in ("--curve", "--surrogate")]
    folder = "runs/bench21/tune_surrogate" if surrogate else "runs/bench21/tune"
    if rest[:1] == ["--pcts"]:
        pcts = [float(x) for x in rest[1].split(",")]
        rest = rest[2:]

        def focus_reference(self, evaluations):  # type: ignore[no-untyped-def]
            F, violation = objective_matrix(evaluations)
            rows = F[(violation <= 0) & np.all(np.isfinite(F), axis=1)]
            return np.array([np.percentile(rows[:, k], pcts[k]) for k in range(rows.shape[1])])

        VariantPLS._focus_reference = focus_reference
    settings = {k: json.loads(v) for k, v in (a.split("=", 1) for a in rest)}
    assert FIRST >= 50 and FIRST + SEEDS <= 100, "tune on seeds 50-99 only"
    ALGORITHMS.register("auto_variants", SurrogateAuto if surrogate else VariantAuto)
    out: dict = {"label": label, "settings": settings, "seeds": [FIRST, FIRST + SEEDS - 1]}
    for dev in ("onnxruntime", "litert"):
        start = time.time()
        acc, device = DATA + "accuracy_cifar10.csv", DATA + f"device_pi5_{dev}.csv"
        problem = load_tabular_problem(acc, device, ("error", "latency_ms"))
        result = run_tabular_benchmark(
            acc,
            device,
            algorithm="auto_variants",
            budget=1500 if curve else 500,
            seed=FIRST,
            repeats=SEEDS,
            settings=settings,
            problem=problem,
            truth=tabular_truth(problem),
            checkpoints=CURVE[:-1] if curve else (),
        )
        if curve:
            at = {k: [r.hv_ratio_at[k] for r in result.runs] for k in CURVE[:-1]}
            at[CURVE[-1]] = [r.hv_ratio for r in result.runs]
            out[dev] = {
                k: {"median": float(np.median(v)), "n_ge_099": int(sum(x >= 0.99 for x in v))}
                for k, v in at.items()
            }
            print(dev, out[dev], flush=True)
            continue
        hv = np.array([r.hv_ratio for r in result.runs])
        out[dev] = {
            "median": float(np.median(hv)),
            "min": float(hv.min()),
            "mean": float(hv.mean()),
            "n_below_099": int((hv < 0.99).sum()),
            "per_seed": [round(float(h), 4) for h in hv],
            "s": time.time() - start,
        }
        print(dev, out[dev], flush=True)
    Path(folder).mkdir(parents=True, exist_ok=True)
    name = f"curve_{label}" if curve else label
    Path(f"{folder}/{name}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
