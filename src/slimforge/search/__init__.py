"""Multi-objective architecture search: problems, algorithms, Pareto utilities, executors.

Ask/tell first (:class:`Algorithm`), with :func:`minimize` as the short loop that canonicalises
candidates, evaluates each network once, writes every evaluation to the run store and resumes.
"""

from __future__ import annotations

from slimforge.search._calibrated_eval import feature_value
from slimforge.search._latency_eval import search_protocol
from slimforge.search._proxy_eval import parse_proxy_weights
from slimforge.search._stored_eval import StoredEvaluator
from slimforge.search.algorithms import ALGORITHMS, Algorithm, make_algorithm
from slimforge.search.constraint import Constraint
from slimforge.search.evaluation import Evaluation
from slimforge.search.evaluator import EVALUATORS, Evaluator, make_evaluator
from slimforge.search.minimize import minimize
from slimforge.search.problem import ACCURACY_SOURCES, DEVICE_SOURCES, Problem, build_problem, make_screen
from slimforge.search.result import SearchResult, feasible_front
from slimforge.search.selection import best, knee_point, within_of_best
from slimforge.search.termination import MaxSeconds, Termination

__all__ = [
    "ACCURACY_SOURCES",
    "ALGORITHMS",
    "DEVICE_SOURCES",
    "EVALUATORS",
    "Algorithm",
    "Constraint",
    "Evaluation",
    "Evaluator",
    "MaxSeconds",
    "Problem",
    "SearchResult",
    "StoredEvaluator",
    "Termination",
    "best",
    "build_problem",
    "feasible_front",
    "feature_value",
    "knee_point",
    "make_algorithm",
    "make_evaluator",
    "make_screen",
    "minimize",
    "parse_proxy_weights",
    "search_protocol",
    "within_of_best",
]

# `slimforge.search(...)` is the public API function of that name (see slimforge.__init__).
from slimforge import _make_callable  # noqa: E402

_make_callable(__import__("sys").modules[__name__])
