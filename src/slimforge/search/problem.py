"""A search problem: a space, named objectives (all minimised), hard constraints and evaluators."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimforge.errors import InvalidInputError, UnknownNameError, close_matches
from slimforge.registry import Registry
from slimforge.search._alias import AliasEvaluator
from slimforge.search.constraint import Constraint
from slimforge.search.evaluation import Evaluation
from slimforge.search.evaluator import Evaluator, make_evaluator
from slimforge.spaces import Genome, SearchSpace, get_space

__all__ = [
    "ACCURACY_SOURCES",
    "COST_METRICS",
    "DEVICE_SOURCES",
    "Problem",
    "Source",
    "build_problem",
    "make_screen",
    "parse_names",
]


class Problem:
    """Minimise ``objectives`` over ``space`` subject to ``constraints``.

    Each objective and constrained metric is looked up among the evaluators' metrics; an
    evaluator only runs when one of its metrics is needed.

    Args:
        space: the search space.
        objectives: metric names, all minimised (``error``, ``latency_ms``, ``energy_mj``, ``num_params``).
        evaluators: where metric values come from; the first evaluator naming a metric gives it.
        constraints: hard constraints, as :class:`Constraint` or strings like ``"latency_ms <= 5"``.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[str],
        evaluators: Sequence[Evaluator],
        constraints: Sequence[Constraint | str] = (),
    ) -> None:
        if isinstance(objectives, str):
            objectives = parse_names(objectives)
        self.space = space
        self.objectives = tuple(objectives)
        self.constraints = tuple(c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints)
        if not self.objectives:
            raise InvalidInputError("a problem needs at least one objective, e.g. 'error,latency_ms'")
        duplicated = sorted({o for o in self.objectives if self.objectives.count(o) > 1})
        if duplicated:
            raise InvalidInputError(f"objective(s) {', '.join(duplicated)} listed twice")
        provider: dict[str, Evaluator] = {}
        for ev in evaluators:
            for metric in ev.metrics:
                provider.setdefault(metric, ev)
        for name, role in [(o, "objective") for o in self.objectives] + [
            (c.metric, f"constraint '{c}'") for c in self.constraints
        ]:
            if name not in provider:
                hint = close_matches(name, provider)
                did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise UnknownNameError(
                    f"unknown {role} metric {name!r}{did_you_mean} "
                    f"(available here: {', '.join(sorted(provider)) or 'none'})"
                )
        needed = list(self.objectives) + [c.metric for c in self.constraints]
        # Only the evaluators that give a needed metric run; keep their given order.
        self.evaluators = tuple(ev for ev in evaluators if any(provider.get(m) is ev for m in needed))
        self._provider = provider

    @property
    def constraint_names(self) -> tuple[str, ...]:
        """The constraints as strings, the keys of :attr:`Evaluation.constraints`."""
        return tuple(str(c) for c in self.constraints)

    def evaluate(self, genome: Genome) -> Evaluation:
        """Evaluate ``genome`` as given (the engine canonicalises it first)."""
        genome = self.space.validate(genome)
        start = time.perf_counter()
        metrics = self.metrics(genome)
        seconds = time.perf_counter() - start
        return self.make_evaluation(genome, metrics, seconds)

    def evaluate_many(self, genomes: Sequence[Genome]) -> list[Evaluation]:
        """:meth:`evaluate` of each genome, each evaluator asked once for the whole batch.

        Evaluators with ``evaluate_many`` batch their work (a supernet's statistics saved once, a
        device's runs interleaved, one vectorised prediction); ``seconds`` of each evaluation is the
        batch's time shared out equally.
        """
        genomes = [self.space.validate(g) for g in genomes]
        if not genomes:
            return []
        start = time.perf_counter()
        metrics: list[dict[str, float]] = [{} for _ in genomes]
        for ev in self.evaluators:
            many = getattr(ev, "evaluate_many", None)
            results = many(genomes) if many is not None else [ev.evaluate(g) for g in genomes]
            for values, got in zip(metrics, results):
                for name, value in got.items():
                    values.setdefault(name, float(value))
        seconds = (time.perf_counter() - start) / len(genomes)
        return [self.make_evaluation(g, m, seconds) for g, m in zip(genomes, metrics)]

    def metrics(self, genome: Genome) -> dict[str, float]:
        """Every metric the needed evaluators give for ``genome`` (the first evaluator naming one wins)."""
        metrics: dict[str, float] = {}
        for ev in self.evaluators:
            for name, value in ev.evaluate(genome).items():
                metrics.setdefault(name, float(value))
        return metrics

    def make_evaluation(self, genome: Genome, metrics: dict[str, float], seconds: float) -> Evaluation:
        """Build the :class:`Evaluation` of ``genome`` from its metric values (also used on resume)."""
        objectives = {name: float(metrics[name]) for name in self.objectives}
        constraints = {str(c): float(metrics[c.metric]) for c in self.constraints}
        violation = sum(c.violation(constraints[str(c)]) for c in self.constraints)
        if any(math.isnan(v) for v in objectives.values()):
            violation = math.inf
        return Evaluation(
            genome=genome,
            arch=self.space.to_string(genome),
            objectives=objectives,
            constraints=constraints,
            violation=violation,
            feasible=violation == 0.0,
            seconds=seconds,
            metrics=metrics,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON description stored with a run; a resume must see the same one."""
        return {
            "space": self.space.name,
            "space_repr": repr(self.space),
            "objectives": list(self.objectives),
            "constraints": list(self.constraint_names),
            "evaluators": [ev.describe() for ev in self.evaluators],
        }

    def __repr__(self) -> str:
        cons = f", constraints={list(self.constraint_names)}" if self.constraints else ""
        return f"Problem({self.space!r}, objectives={list(self.objectives)}{cons})"


def parse_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """Split ``"error,latency_ms"`` into names (a sequence passes through)."""
    if isinstance(text, str):
        names = tuple(n.strip() for n in text.split(",") if n.strip())
    else:
        names = tuple(text)
    if not names:
        raise InvalidInputError(f"no names in {text!r}; give a comma-separated list like 'error,latency_ms'")
    return names


@dataclass(frozen=True)
class Source:
    """One form of an accuracy or device spec (``KIND:ARGUMENT`` or ``KIND``) for :func:`build_problem`.

    Attributes:
        form: how the spec is written, for messages (``supernet:DIR``).
        evaluator: the :data:`~slimforge.search.EVALUATORS` name it makes.
        argument: the evaluator option that takes the spec's argument (or the whole spec).
        gives: the metrics a problem may ask of it.
        aliases: generic metric -> the evaluator's metric it copies (``error`` -> ``predicted_error``).
        takes: the build_problem settings passed on to the evaluator (``data``, ``num_classes``,
            ``input_shape``, ``store_path``).
        has_argument: the spec is ``KIND:ARGUMENT`` (else just ``KIND``).
        whole_spec: ``argument`` takes the whole spec (``local-cpu``, ``remote:URL``), not only
            what follows the ``:``.
    """

    form: str
    evaluator: str
    argument: str
    gives: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    takes: tuple[str, ...] = ()
    has_argument: bool = True
    whole_spec: bool = False


_MEASURED = ("latency_ms", "energy_mj", "latency_iqr_ms")
_MEASURED_TAKES = ("num_classes", "input_shape", "store_path")

#: accuracy sources of :func:`build_problem`, by the kind before the ``:`` of ``accuracy=KIND:ARG``.
ACCURACY_SOURCES: Registry[Source] = Registry("accuracy source")
ACCURACY_SOURCES.register("table", Source("table:FILE", "accuracy_table", "path", ("error", "accuracy")))
ACCURACY_SOURCES.register(
    "supernet",
    Source("supernet:DIR", "supernet_accuracy", "checkpoint", ("error", "accuracy"), takes=("data",)),
)
ACCURACY_SOURCES.register(
    "proxy",
    Source(
        "proxy:NAMES", "proxy", "proxies", ("proxy_score_neg", "proxy_score"), takes=("data", "num_classes")
    ),
)
ACCURACY_SOURCES.register(
    "predictor",
    Source(
        "predictor:FILE",
        "predictor",
        "path",
        ("error", "accuracy", "predicted_error", "predicted_accuracy", "predicted_error_std"),
        aliases=(("error", "predicted_error"), ("accuracy", "predicted_accuracy")),
    ),
)

#: device sources of :func:`build_problem`, by the kind before the ``:`` of ``device=KIND[:ARG]``.
DEVICE_SOURCES: Registry[Source] = Registry("device source")
DEVICE_SOURCES.register("table", Source("table:FILE", "device_table", "path", ("latency_ms", "energy_mj")))
DEVICE_SOURCES.register("lut", Source("lut:FILE", "lut_latency", "path", ("latency_ms",)))
DEVICE_SOURCES.register("predictor", Source("predictor:FILE", "latency_predictor", "path", ("latency_ms",)))
for _kind, _form, _has_argument in (
    ("local-cpu", "local-cpu", False),
    ("local-torch", "local-torch", False),
    ("local-litert", "local-litert", False),
    ("local-openvino", "local-openvino", False),
    ("local-executorch", "local-executorch", False),
    ("remote", "remote:http://HOST:PORT", True),
):
    DEVICE_SOURCES.register(
        _kind,
        Source(
            _form,
            "measured_latency",
            "device",
            _MEASURED,
            takes=_MEASURED_TAKES,
            has_argument=_has_argument,
            whole_spec=True,
        ),
    )

#: metrics computed from the built network alone, and the evaluator that gives each.
COST_METRICS = {
    "num_params": "num_params",
    "macs": "macs",
    "peak_mem_bytes": "peak_memory",
    "model_bytes": "model_size",
}


def _forms(registry: Registry[Source]) -> str:
    return ", ".join(registry.get(k).form for k in registry)


def _family(registry: Registry[Source]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for k in registry for m in registry.get(k).gives))


def _source(registry: Registry[Source], spec: str, what: str, flag: str) -> tuple[Source, str]:
    """The source a spec names and its argument; a malformed or unknown spec raises one line."""
    text = str(spec).strip()
    kind, sep, argument = text.partition(":")
    if kind not in registry:
        hint = close_matches(kind, registry.list())
        did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise UnknownNameError(
            f"unknown {what} {text!r}{did_you_mean} (known forms: {flag} {_forms(registry)})"
        )
    source = registry.get(kind)
    if source.has_argument and not argument:
        raise InvalidInputError(f"{what} {kind!r} needs an argument: write {flag} {source.form}")
    if not source.has_argument and sep:
        raise InvalidInputError(f"{what} {kind!r} takes no argument, got {text!r}; write just {kind}")
    return source, text if source.whole_spec else argument


def _make(
    source: Source, space: SearchSpace, argument: str, settings: Mapping[str, Any], options: Mapping[str, Any]
) -> Evaluator:
    given = {k: settings[k] for k in source.takes if settings.get(k) is not None}
    evaluator = make_evaluator(source.evaluator, space, **{source.argument: argument, **given, **options})
    aliases = {a: m for a, m in source.aliases if m in evaluator.metrics}
    return AliasEvaluator(evaluator, aliases) if aliases else evaluator


def make_screen(
    space: str | SearchSpace, spec: str, *, data: str | None = None, num_classes: int = 10
) -> Evaluator:
    """The cheap evaluator of a predictor-assisted search (``minimize(screen=...)``).

    ``spec`` is ``predictor:FILE`` (a saved accuracy predictor; ranks by ``predicted_error``) or
    ``proxy:NAMES`` (zero-cost proxies; ranks by ``proxy_score_neg``).
    """
    space = get_space(space) if isinstance(space, str) else space
    source, argument = _source(ACCURACY_SOURCES, spec, "screen", "--screen")
    if source.evaluator not in ("predictor", "proxy"):
        raise InvalidInputError(f"screen {spec!r} is not cheap: screen with predictor:FILE or proxy:NAMES")
    settings = {"data": data, "num_classes": num_classes}
    return _make(dataclasses.replace(source, aliases=()), space, argument, settings, {})


def build_problem(
    space: str | SearchSpace,
    objectives: str | Sequence[str],
    *,
    accuracy_table: str | os.PathLike | None = None,
    device: str | Evaluator | None = None,
    constraints: Sequence[str] = (),
    num_classes: int = 10,
    accuracy: str | Evaluator | None = None,
    data: str | None = None,
    input_shape: Sequence[int] | str | None = None,
    accuracy_options: Mapping[str, Any] | None = None,
    device_options: Mapping[str, Any] | None = None,
    measurement_cache: str | os.PathLike | None = None,
) -> Problem:
    """A problem from the CLI's vocabulary: objective and constraint names, an accuracy source and a device.

    Each needed metric picks its evaluator: ``error`` / ``accuracy`` (and a source's own names such
    as ``predicted_error``, ``proxy_score_neg``) come from the accuracy source; ``latency_ms`` /
    ``energy_mj`` / ``latency_iqr_ms`` from the device; ``num_params``, ``macs``, ``peak_mem_bytes``
    and ``model_bytes`` from the built network, with no source. Evaluators no objective or
    constraint needs are not made.

    Args:
        space: a space or its registry name.
        objectives: ``"error,latency_ms"`` or a list of names.
        accuracy_table: CSV table giving ``error`` / ``accuracy`` (the same as ``accuracy="table:FILE"``).
        device: ``table:FILE`` (a device table), ``lut:FILE`` (a latency lookup table),
            ``predictor:FILE`` (a saved latency predictor), or a measured device: ``local-cpu``,
            ``local-torch``, ``remote:http://HOST:PORT``; or an evaluator made already (a run's).
        constraints: strings like ``"latency_ms <= 5"``.
        num_classes: classifier outputs of the networks built for costs, measurements and proxies.
        accuracy: ``table:FILE``, ``supernet:DIR`` (a trained supernet's run directory),
            ``proxy:NAMES`` (zero-cost proxies, e.g. ``proxy:meco,jacob_cov,num_params``; gives
            ``proxy_score_neg``, not ``error``) or ``predictor:FILE`` (a saved accuracy predictor);
            or an evaluator made already (a run's audited estimate).
        data: data spec for ``supernet:`` (default: the data it was trained on) and ``proxy:``
            (default: the built-in ``digits``).
        input_shape: network input for MACs, peak memory and measurements; default the space's.
        accuracy_options: further options of the accuracy evaluator (e.g. ``{"eval_images": 500}``).
        device_options: further options of the device evaluator (e.g. ``{"time_cap_s": 1.0}``).
        measurement_cache: run directory or ``.sqlite`` file where a measured device caches its figures.
    """
    space = get_space(space) if isinstance(space, str) else space
    names = parse_names(objectives)
    parsed = [Constraint.parse(c) for c in constraints]
    needed = list(dict.fromkeys([*names, *(c.metric for c in parsed)]))
    accuracy_family, device_family = _family(ACCURACY_SOURCES), _family(DEVICE_SOURCES)
    known = tuple(dict.fromkeys([*accuracy_family, *device_family, *COST_METRICS]))
    for name in needed:
        if name not in known:
            hint = close_matches(name, known)
            did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise UnknownNameError(f"unknown metric {name!r}{did_you_mean} (known: {', '.join(known)})")
    if accuracy_table is not None and accuracy is not None:
        raise InvalidInputError(
            "give the accuracy source once: --accuracy-table FILE or --accuracy table:FILE, not both"
        )
    if accuracy_table is not None:
        accuracy = f"table:{os.fspath(accuracy_table)}"
    settings = {
        "data": data,
        "num_classes": num_classes,
        "input_shape": input_shape,
        "store_path": measurement_cache,
    }
    accuracy_wanted = [n for n in needed if n in accuracy_family]
    device_wanted = [n for n in needed if n in device_family]
    evaluators = [
        *_source_evaluator(_ACCURACY, space, accuracy, accuracy_wanted, settings, accuracy_options or {}),
        *_source_evaluator(_DEVICE, space, device, device_wanted, settings, device_options or {}),
    ]
    for name in needed:
        if name in COST_METRICS:
            options: dict[str, Any] = {"num_classes": num_classes}
            if input_shape is not None and name != "num_params":
                options["input_shape"] = input_shape
            evaluators.append(make_evaluator(COST_METRICS[name], space, **options))
    return Problem(space, names, evaluators, parsed)


@dataclass(frozen=True)
class _Family:
    """The accuracy sources or the devices: their registry, words (``needs`` fills ``{forms}``,
    ``instead`` ``{gives}`` and ``{missing}``) and a ``check`` of the settings and options given."""

    registry: Registry[Source]
    what: str
    flag: str
    needs: str
    instead: str
    check: Callable[[Source | None, list[str], Mapping[str, Any], Mapping[str, Any]], None]


def _check_accuracy(
    source: Source | None, wanted: list[str], settings: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    if settings.get("data") is None:
        return
    if source is None:
        raise InvalidInputError("--data goes with a supernet: or proxy: accuracy source (--accuracy)")
    if "data" not in source.takes:
        raise InvalidInputError(
            f"--data goes with a supernet: or proxy: accuracy source, not {source.form}; drop it"
        )


def _check_device(
    source: Source | None, wanted: list[str], settings: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    if source is not None and wanted and options and source.evaluator != "measured_latency":
        raise InvalidInputError(
            f"device options {', '.join(options)} go with a measured device, not {source.form}"
        )


_ACCURACY = _Family(
    ACCURACY_SOURCES,
    "accuracy source",
    "--accuracy",
    needs=(
        "an accuracy source: give --accuracy-table FILE (a CSV with index,arch,accuracy) "
        "or --accuracy SPEC ({forms})"
    ),
    instead="ask for {gives} instead, or use a source that gives {missing}",
    check=_check_accuracy,
)
_DEVICE = _Family(
    DEVICE_SOURCES,
    "device",
    "--device",
    needs="a device: give --device table:FILE, or one of {forms}",
    instead="use a device table (table:FILE) or a measured device (local-cpu, local-torch, remote:URL)",
    check=_check_device,
)


def _source_evaluator(
    family: _Family,
    space: SearchSpace,
    spec: str | Evaluator | None,
    wanted: list[str],
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
) -> list[Evaluator]:
    """The evaluator of ``family``'s source ``spec`` when a metric in ``wanted`` needs it (none otherwise)."""
    if isinstance(spec, Evaluator):
        return [_given(spec, wanted, family.what)] if wanted else []
    if spec is None:
        if wanted:
            needs = family.needs.format(forms=_forms(family.registry))
            raise InvalidInputError(f"{'/'.join(wanted)} needs {needs}")
        family.check(None, wanted, settings, options)
        return []
    source, argument = _source(family.registry, spec, family.what, family.flag)  # a typo is refused anyway
    family.check(source, wanted, settings, options)
    missing = [n for n in wanted if n not in source.gives]
    if missing:
        instead = family.instead.format(gives=source.gives[0], missing=missing[0])
        raise InvalidInputError(
            f"{family.what} {source.form} gives {', '.join(source.gives)}, not {', '.join(missing)}; {instead}"
        )
    return [_make(source, space, argument, settings, options)] if wanted else []


def _given(evaluator: Evaluator, wanted: list[str], what: str) -> Evaluator:
    """An evaluator passed in whole: it must give every metric asked of the source."""
    missing = [n for n in wanted if n not in evaluator.metrics]
    if missing:
        raise InvalidInputError(
            f"the {what} {type(evaluator).__name__} gives {', '.join(evaluator.metrics)}, not {', '.join(missing)}"
        )
    return evaluator
