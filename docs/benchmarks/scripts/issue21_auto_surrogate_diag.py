"""Issue 21 surrogate tuning diagnostics (seeds 50-99 only): per true-front member in the scored box,
in how many runs each variant found it, and the mean hypervolume loss of missing it.

    python docs/benchmarks/scripts/issue21_auto_surrogate_diag.py DEV LABEL=JSONSETTINGS ...
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from issue21_auto_surrogate import SurrogateAuto

from slimforge.search import minimize
from slimforge.search.algorithms import ALGORITHMS
from slimforge.search.benchmark import load_tabular_problem, tabular_truth
from slimforge.search.indicators import hypervolume

DATA = "../shared/data/nb201/"
dev = sys.argv[1]
ALGORITHMS.register("auto_surrogate", SurrogateAuto)
problem = load_tabular_problem(DATA + "accuracy_cifar10.csv", DATA + f"device_pi5_{dev}.csv")
truth = tabular_truth(problem)
sp = problem.space
box = truth.lower + truth.ref_point * (truth.upper - truth.lower)
front = [g for g, p in zip(truth.front, truth.front_norm) if np.all(p < truth.ref_point)]
fvals = {g: np.array(problem.evaluate(g).vector) for g in front}
loss = {}
for i, g in enumerate(front):
    rest = np.array([p for j, p in enumerate(truth.front_norm) if truth.front[j] != g])
    loss[g] = 1 - hypervolume(rest, truth.ref_point) / truth.hv
print("box", box.round(3))
for arg in sys.argv[2:]:
    label, settings = arg.split("=", 1)
    settings = json.loads(settings)
    found = {g: 0 for g in front}
    inbox = []
    for s in range(50, 100):
        res = minimize(problem, "auto_surrogate", budget=500, seed=s, settings=settings)
        got = {e.genome for e in res.evaluations}
        for g in front:
            found[g] += g in got
        F = np.array([e.vector for e in res.evaluations])[50:]
        inbox.append(float(np.mean(np.all(F < box, axis=1))))
    print(f"== {label}: in-box share of post-init evaluations {np.mean(inbox):.3f}")
    for g in sorted(front, key=lambda g: fvals[g][1]):
        print(f"  {fvals[g].round(3)} loss {loss[g]:.3f} found {found[g]:2d}/50  {sp.to_string(g)}")
