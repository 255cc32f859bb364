"""Issue 21, `auto` on the ONNX Runtime table: the measurements behind "Why 500 is not enough".

    python docs/benchmarks/scripts/issue21_auto_diagnostics.py

Seeds 50-99 only. Prints, for the previous default (weight_power=1, deepen=0) and the current one:
how many runs evaluate the most accurate network under the latency reference (T) and the dominated
network between T and the 6.40% network; for seeds 50-61, after how many evaluations the front
inside the focus box is first spent; for seeds 50-59, the share of local-search evaluations inside
the scored box.
"""

from __future__ import annotations

import numpy as np

from slimforge.search import minimize
from slimforge.search.algorithms.auto import Auto
from slimforge.search.benchmark import load_tabular_problem, tabular_truth
from slimforge.search.pareto import pareto_mask

DATA = "../shared/data/nb201/"
PREVIOUS = {"weight_power": 1.0, "deepen": 0}
T = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|skip_connect~2|"
STONE = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|skip_connect~2|"


def main() -> None:
    problem = load_tabular_problem(
        DATA + "accuracy_cifar10.csv", DATA + "device_pi5_onnxruntime.csv", ("error", "latency_ms")
    )
    truth = tabular_truth(problem)
    space = problem.space
    box = truth.lower + truth.ref_point * (truth.upper - truth.lower)
    print("scored box (error %, latency ms):", box.round(3))
    t, stone = space.from_string(T), space.from_string(STONE)
    for label, settings in (("previous default", PREVIOUS), ("current default", {})):
        found = [
            {e.genome for e in minimize(problem, "auto", budget=500, seed=s, settings=settings).evaluations}
            for s in range(50, 100)
        ]
        print(
            f"{label}: T in {sum(t in f for f in found)}/50 runs, the stepping stone in "
            f"{sum(stone in f for f in found)}/50"
        )
    spent = []
    for seed in range(50, 62):
        algo, n, first = Auto(space, seed=seed, **PREVIOUS), 0, None
        while n < 1500 and first is None:
            local = algo._local
            if local._initialised:
                F = local._F
                inside = [i for i in np.flatnonzero(pareto_mask(F)) if np.all(F[i] < local._reference)]
                if inside and not any(local._neighbours(local.archive[i].genome) for i in inside):
                    first = n
            asked = algo.ask()
            algo.tell([problem.evaluate(space.canonical(g)) for g in asked])
            n += len(asked)
        spent.append(first)
    print("previous default, seeds 50-61: focus front first spent after", spent, "evaluations")
    shares = []
    for seed in range(50, 60):
        result = minimize(problem, "auto", budget=500, seed=seed, settings=PREVIOUS)
        F = np.array([e.vector for e in result.evaluations])[50:]
        shares.append(float(np.mean(np.all(F < box, axis=1))))
    print(
        "previous default, seeds 50-59: local-search evaluations inside the scored box",
        [round(x, 3) for x in shares],
    )


if __name__ == "__main__":
    main()
