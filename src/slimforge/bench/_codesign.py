"""``slimforge bench codesign``: the hardware co-design study reproduced on NAS-Bench-201 (REFERENCE.md §1).

Protocol. One supernet per method (DARTS, RSPS, GDAS and SPOS by default) is trained on the data
with the validation part held out of weight training (the study splits the training set in two).
For every device table, the methods' own architectures (DARTS/GDAS argmax, RSPS's best random
candidate) become the rows ``DARTS``, ``RSPS``, ``GDAS``; then each searched supernet (GDAS and
SPOS) is searched by every algorithm (WSEA, CEA, NSGA-II) for (error, latency, energy), the error
being the supernet's inherited-weight ("proxy") error on the held-out images and the costs the
device table's. Each algorithm reports one architecture, chosen as the study does (see
:mod:`._select`); its *true* accuracy comes from the accuracy table. The gap between proxy and
true error is measured along the supernet-estimated front.

Everything expensive is resumable in the output directory: supernet checkpoints every epoch, and
every proxy evaluation in a run store beside its supernet, so a second run (or a resumed one)
repeats the searches from stored answers in seconds.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from slimforge.errors import InvalidInputError
from slimforge.bench._codesign_config import CodesignConfig
from slimforge.bench._codesign_result import CodesignResult, CodesignRow
from slimforge.bench._common import (
    bench_train_config,
    environment,
    front_2d,
    start_bench,
    train_supernets,
    write_result,
)
from slimforge.bench._select import representative
from slimforge.search import StoredEvaluator

__all__ = ["ALGORITHM_LABELS", "run_codesign"]

#: the study's row suffixes; other algorithms print their name in capitals.
ALGORITHM_LABELS = {"nsga2": "NSGA", "wsea": "WSEA", "cea": "CEA"}
# The algorithm whose front is compared with the truth (the study's); else every algorithm's evaluations.
_FRONT_ALGORITHM = "nsga2"


def _device_label(path: str) -> str:
    stem = Path(path).name.removesuffix(".csv")
    return stem.removeprefix("device_") or stem


def _given(algorithm: Any):  # type: ignore[no-untyped-def]
    """A factory handing ``minimize`` an algorithm already made (so its calibration can be read after)."""

    def factory(space: Any, *, seed: int = 0) -> Any:
        return algorithm

    return factory


def _search_budget(name: str, settings: dict[str, Any], space: Any, config: CodesignConfig) -> int:
    """Distinct evaluations the algorithm may use: its initial sample plus ``iterations`` generations."""
    from slimforge.search import make_algorithm

    if "iterations" not in settings:
        # Not a generational GA: NSGA-II's budget, so every algorithm gets the same.
        reference = make_algorithm(
            "nsga2", space, seed=0, pop_size=config.pop_size, iterations=config.iterations
        ).settings()
        settings = {**reference, **settings}
    children = settings["n_crossover"] + settings["n_mutation"] + settings["n_random"]
    initial = settings.get("num_calibration", settings["pop_size"])
    return min(space.size, initial + settings["iterations"] * children)


def _settings_for(name: str, config: CodesignConfig) -> dict[str, Any]:
    from slimforge.search.algorithms import ALGORITHMS, setting_names

    accepted = setting_names(ALGORITHMS.get(name)) or set()
    wanted = {
        "pop_size": config.pop_size,
        "iterations": config.iterations,
        "num_calibration": config.num_calibration,
    }
    return {k: v for k, v in wanted.items() if k in accepted}


def supernet_train_config(config: CodesignConfig, method: str) -> Any:
    """The :class:`~slimforge.supernet.TrainConfig` of ``method``'s supernet in this benchmark.

    The optimisers are TrainConfig's defaults, the study's Table 5-1 (SGD 0.025 cosine to 0, Nesterov
    0.9, wd 5e-4; Adam 3e-4, wd 1e-3); the validation part is held out for the proxy.
    """
    return bench_train_config(
        config,
        epochs=config.epochs,
        space="nb201",
        space_kwargs={"channels": config.channels, "cells_per_stage": config.cells_per_stage},
        method=method,
        method_options=config.method_options.get(method, {}),
    )


def run_codesign(config: CodesignConfig, out_dir: str | Path, *, progress: bool = False) -> CodesignResult:
    """Reproduce the co-design study's tables on NAS-Bench-201 (see the module docstring).

    Args:
        config: the settings (:meth:`CodesignConfig.from_preset` for the study's or a CPU's scale).
        out_dir: the benchmark directory: supernets, proxy stores, ``codesign.json``,
            ``codesign_table.md`` and ``proxy_vs_true_<device>.png``. Re-running resumes.
        progress: progress bars on stderr.

    Raises:
        InvalidInputError: missing or malformed tables or data (before any training), a directory
            holding another benchmark, or supernets trained with other settings.
    """
    from slimforge.data import load_dataset
    from slimforge.search.tabular import TabularAccuracyEvaluator, TabularDeviceEvaluator
    from slimforge.spaces import NB201Space

    start = time.perf_counter()
    out = Path(out_dir)
    space = NB201Space(channels=config.channels, cells_per_stage=config.cells_per_stage)
    # Every input is read and checked before the first training step.
    load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    truth = TabularAccuracyEvaluator(space, config.accuracy_table)
    devices: dict[str, Any] = {}
    for path in config.device_tables:
        label = _device_label(path)
        if label in devices:
            raise InvalidInputError(f"two device tables are named {label!r}; give each table once")
        devices[label] = TabularDeviceEvaluator(space, path)
    train_device = start_bench(out, "codesign", config)

    supernets = train_supernets(
        config.methods,
        functools.partial(supernet_train_config, config),
        out,
        device=train_device,
        progress=progress,
    )

    proxies = {m: _proxy(space, out / "supernets" / m, config, train_device) for m in config.search_on}
    rows: list[CodesignRow] = []
    searches: list[dict[str, Any]] = []
    fronts: dict[tuple[str, str], list[Any]] = {}
    try:
        for label, device in devices.items():
            for method in config.methods:
                arch = supernets[method].get("derived_arch")
                if arch is not None:
                    genome = space.from_string(arch)
                    proxy = proxies[method].evaluate(genome)["accuracy"] if method in proxies else None
                    rule = "the method's own architecture (argmax of α, or best of its random search)"
                    rows.append(
                        _row(label, method.upper(), method, None, genome, rule, truth, device, space, proxy)
                    )
            for method in config.search_on:
                for name in config.algorithms:
                    result, summary, row = _search(
                        space, method, name, proxies[method], label, device, truth, config, progress
                    )
                    rows.append(row)
                    searches.append(summary)
                    if name == _FRONT_ALGORITHM or _FRONT_ALGORITHM not in config.algorithms:
                        fronts.setdefault((method, label), []).extend(result.evaluations)
        gaps = [_proxy_gap(m, label, evals, truth, devices[label]) for (m, label), evals in fronts.items()]
        ranking = {m: _ranking(proxies[m], truth, space) for m in config.search_on}
    finally:
        for proxy in proxies.values():
            proxy.close()

    files = {"json": "codesign.json", "table": "codesign_table.md"}
    if config.png and gaps:
        for label, device in devices.items():
            mine = [g for g in gaps if g["device"] == label]
            if mine:
                path = out / f"proxy_vs_true_{label}.png"
                files[f"figure_{label}"] = _figure(path, label, mine, truth, device, space).name
    result = CodesignResult(
        config=config.to_dict(),
        environment=environment(train_device),
        devices={label: str(path) for label, path in zip(devices, config.device_tables)},
        supernets=supernets,
        rows=tuple(rows),
        searches=tuple(searches),
        proxy_vs_true=tuple(gaps),
        proxy_ranking=ranking,
        files=files,
        wall_s=time.perf_counter() - start,
    )
    return write_result(out, result)


def _proxy(space: Any, checkpoint: Path, config: CodesignConfig, device: str) -> StoredEvaluator:
    from slimforge.search import make_evaluator

    inner = make_evaluator(
        "supernet_accuracy",
        space,
        checkpoint=checkpoint,
        split="val",
        eval_images=config.eval_images,
        bn_images=config.bn_images,
        device=device,
        seed=config.seed,
    )
    return StoredEvaluator(inner, checkpoint / "proxy.sqlite", ignore=("checkpoint",))


def _row(
    label: str,
    name: str,
    method: str,
    algorithm: str | None,
    genome: Any,
    rule: str,
    truth: Any,
    device: Any,
    space: Any,
    proxy: float | None,
    evaluations: int | None = None,
) -> CodesignRow:
    if genome is None:
        return CodesignRow(label, name, method, algorithm, None, rule, None, None, None, None, evaluations)
    cost = device.evaluate(genome)
    return CodesignRow(
        device=label,
        name=name,
        method=method,
        algorithm=algorithm,
        arch=space.to_string(genome),
        rule=rule,
        accuracy_pct=truth.evaluate(genome)["accuracy"],
        latency_ms=cost["latency_ms"],
        energy_mj=cost.get("energy_mj"),
        proxy_accuracy_pct=proxy,
        num_evaluations=evaluations,
    )


def _search(
    space: Any,
    method: str,
    name: str,
    proxy: StoredEvaluator,
    label: str,
    device: Any,
    truth: Any,
    config: CodesignConfig,
    progress: bool,
) -> tuple[Any, dict[str, Any], CodesignRow]:
    from slimforge.search import Problem, make_algorithm, minimize

    objectives = ("error", "latency_ms") + (("energy_mj",) if "energy_mj" in device.metrics else ())
    problem = Problem(space, objectives, [proxy, device])
    settings = _settings_for(name, config)
    algorithm = make_algorithm(name, space, seed=config.seed, **settings)
    budget = _search_budget(name, algorithm.settings(), space, config)
    computed = proxy.num_computed
    result = minimize(problem, _given(algorithm), budget=budget, seed=config.seed, progress=progress)
    chosen, rule = representative(name, result, algorithm)
    row = _row(
        label,
        f"{method.upper()}+{ALGORITHM_LABELS.get(name, name.upper())}",
        method,
        name,
        None if chosen is None else chosen.genome,
        rule,
        truth,
        device,
        space,
        None if chosen is None else chosen.metrics.get("accuracy"),
        result.num_evaluations,
    )
    calibration = {}
    for attr in ("mean", "std", "epsilon"):
        if hasattr(algorithm, attr):
            calibration[attr] = [float(v) for v in np.atleast_1d(getattr(algorithm, attr))]
    summary = {
        "supernet": method,
        "device": label,
        "algorithm": name,
        "objectives": list(objectives),
        "settings": algorithm.settings(),
        "budget": budget,
        "num_evaluations": result.num_evaluations,
        "proxy_evaluations_computed": proxy.num_computed - computed,
        "stop_reason": result.stop_reason,
        "wall_s": result.wall_s,
        "front_size": len(result.front),
        "calibration": calibration,
        "representative": None if chosen is None else chosen.to_dict(),
        "rule": rule,
    }
    return result, summary, row


def _proxy_gap(method: str, label: str, evaluations: list[Any], truth: Any, device: Any) -> dict[str, Any]:
    """The supernet-estimated (latency, proxy error) front and the true error of the same architectures."""
    unique = list({e.genome: e for e in evaluations if e.feasible}.values())
    points = np.array([[e.metrics["latency_ms"], e.metrics["error"]] for e in unique], dtype=float)
    points = points.reshape(-1, 2)
    front = []
    for i in front_2d(points):
        e = unique[i]
        front.append(
            {
                "arch": e.arch,
                "latency_ms": float(e.metrics["latency_ms"]),
                "proxy_error_pct": float(e.metrics["error"]),
                "true_error_pct": float(truth.evaluate(e.genome)["error"]),
            }
        )
    gaps = np.array([f["proxy_error_pct"] - f["true_error_pct"] for f in front], dtype=float)
    thirds = np.array_split(gaps, 3) if len(gaps) >= 3 else [gaps]
    return {
        "supernet": method,
        "device": label,
        "front": front,
        "mean_gap_pp": float(gaps.mean()) if len(gaps) else None,
        "mean_abs_gap_pp": float(np.abs(gaps).mean()) if len(gaps) else None,
        "mean_gap_pp_by_latency_third": [float(t.mean()) if len(t) else None for t in thirds],
    }


def _ranking(proxy: StoredEvaluator, truth: Any, space: Any) -> dict[str, Any]:
    """How the supernet ranks every architecture it evaluated (over all runs kept in its store)."""
    from slimforge.supernet import rank_correlations

    records = proxy.stored()
    genomes = [g for g, _ in records]
    scores = np.array([m["accuracy"] for _, m in records], dtype=float)
    true = np.array([truth.evaluate(g)["accuracy"] for g in genomes], dtype=float)
    tau, rho = rank_correlations(scores, true)
    proxy.close()
    return {"num_archs": len(genomes), "kendall_tau": tau, "spearman_rho": rho}


def _figure(path: Path, label: str, gaps: list[dict[str, Any]], truth: Any, device: Any, space: Any) -> Path:
    """The proxy-versus-true figure of one device: each searched supernet's estimated front, the true
    error of the same architectures, and the table's true front over every canonical network."""
    import itertools

    from slimforge.report import plot_fronts

    fronts: dict[str, np.ndarray] = {}
    for gap in gaps:
        name = gap["supernet"].upper()
        lat = [f["latency_ms"] for f in gap["front"]]
        proxy = [f["proxy_error_pct"] for f in gap["front"]]
        true = [f["true_error_pct"] for f in gap["front"]]
        fronts[f"{name} proxy front (supernet error)"] = np.column_stack([lat, proxy])
        fronts[f"{name} same architectures, true error"] = np.column_stack([lat, true])
    canonical = {space.canonical(g) for g in itertools.product(*(range(n) for n in space.num_choices))}
    genomes = sorted(canonical)
    table = np.array(
        [[device.evaluate(g)["latency_ms"], truth.evaluate(g)["error"]] for g in genomes], dtype=float
    )
    fronts["true front (tables, every network)"] = table[front_2d(table)]
    return plot_fronts(
        fronts,
        path,
        "latency (ms, device table)",
        "CIFAR-10 error (%)",
        title=f"proxy vs true error along the front — {label}",
    )
