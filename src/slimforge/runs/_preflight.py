"""What a run checks before it trains anything: names, settings, devices, files.

A mistake found after an hour of supernet training costs that hour. :func:`preflight` checks what
every stage shares (space, data, metrics) and then asks each stage of the plan to check its own
settings (:meth:`slimforge.runs._stage.RunStage.check`); every error names the config key, the bad
value and the choices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slimforge.errors import SlimforgeError
from slimforge.runs.config import ConfigError, RunConfig

__all__ = ["KNOWN_METRICS", "at", "known_metric", "preflight", "search_metrics"]

#: metrics a run's objectives, constraints and selection may name.
KNOWN_METRICS = (
    "error", "accuracy", "latency_ms", "energy_mj", "num_params", "macs", "peak_mem_bytes", "model_bytes",
)


def at(key: str, check: Callable[[], Any]) -> Any:
    """Run ``check``; a slimforge error becomes a ConfigError that names ``key``."""
    try:
        return check()
    except ConfigError:
        raise
    except SlimforgeError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except TypeError as exc:  # bad constructor options, e.g. space.options
        raise ConfigError(f"{key}: {exc}") from None


def known_metric(key: str, name: str) -> None:
    """Raise a ConfigError naming ``key`` unless ``name`` is one of :data:`KNOWN_METRICS`."""
    from slimforge.errors import close_matches

    if name not in KNOWN_METRICS:
        hint = close_matches(name, KNOWN_METRICS)
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise ConfigError(f"{key}: unknown metric {name!r}{did_you_mean} (allowed: {', '.join(KNOWN_METRICS)})")


def search_metrics(config: RunConfig) -> set[str]:
    """Every metric the search's objectives and constraints name (each checked)."""
    from slimforge.search.constraint import Constraint

    for i, name in enumerate(config.search.objectives):
        known_metric(f"search.objectives[{i}]", name)
    metrics = set(config.search.objectives)
    for i, text in enumerate(config.search.constraints):
        constraint = at(f"search.constraints[{i}]", lambda t=text: Constraint.parse(t))
        known_metric(f"search.constraints[{i}]", constraint.metric)
        metrics.add(constraint.metric)
    return metrics


def preflight(config: RunConfig, stages: Sequence[Any] = ()) -> Any:
    """Check the shared settings (space, data) and every stage's own; returns the space."""
    from slimforge.data import parse_data_spec
    from slimforge.spaces import get_space

    space = at("space", lambda: get_space(config.space.name, **config.space.options))
    at("data", lambda: parse_data_spec(config.data))
    for stage in stages:
        stage.check(config)
    return space
