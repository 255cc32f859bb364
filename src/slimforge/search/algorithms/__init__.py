"""Search algorithms behind one registry; each implements ask/tell (:class:`Algorithm`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from slimforge.errors import InvalidInputError
from slimforge.registry import Registry
from slimforge.search.algorithms._base import MAX_POPULATION, Algorithm
from slimforge.spaces import SearchSpace

__all__ = ["ALGORITHMS", "MAX_POPULATION", "Algorithm", "make_algorithm", "setting_names"]

AlgorithmFactory = Callable[..., Algorithm]

ALGORITHMS: Registry[AlgorithmFactory] = Registry("search algorithm")
ALGORITHMS.register("nsga2", "slimforge.search.algorithms.nsga2:NSGA2")
ALGORITHMS.register("wsea", "slimforge.search.algorithms.wsea:WSEA")
ALGORITHMS.register("cea", "slimforge.search.algorithms.cea:CEA")
ALGORITHMS.register("random", "slimforge.search.algorithms.random_search:RandomSearch")
ALGORITHMS.register("pls", "slimforge.search.algorithms.pareto_local_search:ParetoLocalSearch")
ALGORITHMS.register(
    "regularized_evolution", "slimforge.search.algorithms.regularized_evolution:RegularizedEvolution"
)
ALGORITHMS.register("auto", "slimforge.search.algorithms.auto:Auto")
ALGORITHMS.register("bo", "slimforge.search.algorithms.bo:BayesianOptimization")
ALGORITHMS.register("rl", "slimforge.search.algorithms.rl:ReinforceController")


def make_algorithm(
    algorithm: str | AlgorithmFactory, space: SearchSpace, *, seed: int = 0, **settings: Any
) -> Algorithm:
    """Create an algorithm from its registry name or a factory ``factory(space, seed=..., **settings)``."""
    factory = ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else algorithm
    accepted = setting_names(factory)
    unknown = sorted(set(settings) - accepted) if accepted is not None else []
    if unknown:
        name = algorithm if isinstance(algorithm, str) else getattr(algorithm, "__name__", repr(algorithm))
        raise InvalidInputError(
            f"algorithm {name!r} has no setting {', '.join(map(repr, unknown))}; "
            f"its settings: {', '.join(sorted(accepted)) or 'none'}"
        )
    return factory(space, seed=seed, **settings)


def setting_names(factory: AlgorithmFactory) -> set[str] | None:
    """Keyword settings a factory takes (following ``**kwargs`` up a class's bases); None if unknown."""
    targets = (
        [c.__init__ for c in factory.__mro__ if "__init__" in vars(c)]
        if isinstance(factory, type)
        else [factory]
    )
    names: set[str] = set()
    for target in targets:
        try:
            params = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return names - {"seed"}
    return None
