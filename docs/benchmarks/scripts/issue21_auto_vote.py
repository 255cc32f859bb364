"""Issue 21, `auto` tuning (seeds 50-99 only): "neighbour votes", a share of every local batch for the
unevaluated networks that are single-gene neighbours of the most evaluated networks inside the focus box.

    python docs/benchmarks/scripts/issue21_auto_vote.py LABEL [key=JSON ...]   # vote_share, min_votes, auto's settings

The idea came from the anomaly diagnostics (issue21_auto_anomaly_diag.py): the network that decides the ONNX
Runtime figure had four measured in-box neighbours on a run that missed it. ``vote_share=0`` is the shipped
`auto` (same per-seed figures). Prints the median, mean, minimum and seeds at >= 0.99 of 50 per table.
"""
import json
import sys
import time
from collections import Counter

import numpy as np

from slimforge.search.algorithms import ALGORITHMS
from slimforge.search.algorithms.auto import Auto, _GuidedPLS
from slimforge.search.benchmark import load_tabular_problem, run_tabular_benchmark, tabular_truth


class VotePLS(_GuidedPLS):
    vote_share = 0.1
    min_votes = 3
    def _tell(self, evaluations):
        super()._tell(evaluations)
        if not hasattr(self, "_votes"):
            self._votes = Counter(); self._counted = 0
        if self._reference is None:
            return
        for e in self.archive[self._counted:]:
            v = np.asarray(e.vector, float)
            if np.all(np.isfinite(v)) and np.all(v < self._reference):
                for n in {self.space.canonical(x) for x in self.space.neighbours(e.genome)}:
                    if n != e.genome:
                        self._votes[n] += 1
        self._counted = len(self.archive)
    def _ask(self):
        k = round(self.vote_share * self.batch_size)
        if k <= 0 or not (self._initialised and self.archive) or not hasattr(self, "_votes"):
            return super()._ask()
        cands = [(c, g) for g, c in self._votes.items() if c >= self.min_votes and g not in self._proposed]
        if not cands:
            return super()._ask()
        cands.sort(key=lambda t: (-t[0], t[1]))
        top = cands[0][0]
        tied = [g for c, g in cands if c == top]
        picks = [tied[i] for i in self.rng.permutation(len(tied))[:k]]
        return self._batch_with(picks, fill=super()._ask)  # the rest: the shipped batch (model picks and local moves)


class VoteAuto(Auto):
    name = "auto_vote"
    def __init__(self, space, *, seed=0, vote_share=0.1, min_votes=3, **kw):
        super().__init__(space, seed=seed, **kw)
        loc = self._local
        loc.__class__ = VotePLS  # the shipped local phase, with the votes added (no state of its own yet)
        loc.vote_share = vote_share; loc.min_votes = min_votes
ALGORITHMS.register("auto_vote", VoteAuto)
D = "../shared/data/nb201/"
settings = {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])}
label = sys.argv[1]
out = {}
for dev in ("onnxruntime", "litert"):
    t0 = time.time()
    acc, device = D + "accuracy_cifar10.csv", D + f"device_pi5_{dev}.csv"
    problem = load_tabular_problem(acc, device, ("error", "latency_ms"))
    res = run_tabular_benchmark(acc, device, algorithm="auto_vote", budget=500, seed=50, repeats=50,  # tuning seeds 50-99 only
                                settings=settings, problem=problem, truth=tabular_truth(problem))
    hv = np.array([r.hv_ratio for r in res.runs])
    out[dev] = dict(median=round(float(np.median(hv)), 4), mean=round(float(hv.mean()), 4), min=round(float(hv.min()), 3), n_ge=int((hv >= 0.99).sum()), s=round(time.time() - t0))
print(label, settings, json.dumps(out), flush=True)
