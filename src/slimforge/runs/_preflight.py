"""Everything a run can check before it trains anything: names, settings, devices, files.

A mistake found after an hour of supernet training costs that hour; :func:`preflight` finds
the ones that can be found up front and names the config key, the bad value and the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slimforge.errors import SlimforgeError
from slimforge.runs.config import ConfigError, RunConfig

__all__ = ["KNOWN_METRICS", "preflight"]

#: metrics a run's objectives, constraints and selection may name.
KNOWN_METRICS = (
    "error", "accuracy", "latency_ms", "energy_mj", "num_params", "macs", "peak_mem_bytes", "model_bytes",
)


def _at(key: str, check: Callable[[], Any]) -> Any:
    """Run ``check``; a slimforge error becomes a ConfigError that names ``key``."""
    try:
        return check()
    except ConfigError:
        raise
    except SlimforgeError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except TypeError as exc:  # bad constructor options, e.g. space.options
        raise ConfigError(f"{key}: {exc}") from None


def _known_metric(key: str, name: str) -> None:
    from slimforge.errors import close_matches

    if name not in KNOWN_METRICS:
        hint = close_matches(name, KNOWN_METRICS)
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise ConfigError(f"{key}: unknown metric {name!r}{did_you_mean} (allowed: {', '.join(KNOWN_METRICS)})")


def _check_names(config: RunConfig) -> Any:
    from slimforge.search.algorithms import make_algorithm
    from slimforge.search.constraint import Constraint
    from slimforge.spaces import get_space
    from slimforge.supernet import TRAINERS
    from slimforge.zoo import MODELS

    space = _at("space", lambda: get_space(config.space.name, **config.space.options))
    _at("supernet.method", lambda: TRAINERS.get(config.supernet.method).resolve_options(dict(config.supernet.options)))
    _at("search.algorithm", lambda: make_algorithm(config.search.algorithm, space, seed=0, **config.search.settings))
    for i, name in enumerate(config.search.objectives):
        _known_metric(f"search.objectives[{i}]", name)
    metrics = set(config.search.objectives)
    for i, text in enumerate(config.search.constraints):
        constraint = _at(f"search.constraints[{i}]", lambda t=text: Constraint.parse(t))
        _known_metric(f"search.constraints[{i}]", constraint.metric)
        metrics.add(constraint.metric)
    for key in ("objective", "cost"):
        value = getattr(config.select, key)
        if config.select.rule in ("best", "within") and value not in metrics:
            raise ConfigError(
                f"select.{key} {value!r} is not among the search's objectives or constraints "
                f"({', '.join(sorted(metrics))})"
            )
    for i, name in enumerate(config.retrain.reference):
        _at(f"retrain.reference[{i}]", lambda n=name: MODELS.get(n))
    if config.compress.recipe.strip().lower() not in ("", "none"):
        from slimforge.compress import parse_stages

        _at("compress.recipe", lambda: parse_stages(config.compress.recipe))
    if config.compress.auto is not None:
        from slimforge.compress._auto_bits import BITS_BUDGET_KEYS
        from slimforge.compress._auto_prune import PRUNE_BUDGET_KEYS
        from slimforge.compress._budget import parse_budget

        keys = PRUNE_BUDGET_KEYS if config.compress.auto == "prune" else BITS_BUDGET_KEYS
        _at("compress.budget", lambda: parse_budget(config.compress.budget, keys, what=f"compress.auto {config.compress.auto}"))
    from slimforge.data import parse_data_spec

    _at("data", lambda: parse_data_spec(config.data))
    if config.select.rule == "list":
        for i, arch in enumerate(config.select.archs):
            _at(f"select.archs[{i}]", lambda a=arch: space.from_string(a))
    return space


def _check_devices(config: RunConfig, space: Any) -> None:
    """Every device answers now (a remote agent is reached), before any training."""
    from slimforge.hardware.lut import split_layerwise
    from slimforge.runs._stage_search import make_device

    wants_energy = "energy_mj" in config.search.objectives or any(
        c.replace(" ", "").startswith("energy_mj") for c in config.search.constraints
    )
    for i, d in enumerate(config.devices):
        key = f"devices[{i}] ({d.name})"
        device = _at(f"{key}.spec", lambda d=d: make_device(d))
        _at(f"{key}.spec", device.describe)
        if d.cost == "lut":
            if wants_energy:
                raise ConfigError(
                    f"{key}.cost lut gives latency only, but the search wants energy_mj; use cost measure"
                )
            _at(f"{key}.cost", lambda: split_layerwise(space, getattr(space, "input_shape", (1, 3, 32, 32))))
        if d.cost == "table" and getattr(getattr(device, "table", None), "space", space.name) != space.name:
            raise ConfigError(f"{key}.spec: the table is for space {device.table.space!r}, the run searches {space.name!r}")


def preflight(config: RunConfig) -> None:
    """Check the config's names and settings and reach every device; raise a ConfigError naming the key."""
    space = _check_names(config)
    source = config.accuracy.source
    if source.startswith("table:"):
        from slimforge.search import make_evaluator

        _at("accuracy.source", lambda: make_evaluator("accuracy_table", space, path=source.partition(":")[2]))
    _check_devices(config, space)
