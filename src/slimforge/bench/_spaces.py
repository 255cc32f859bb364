"""``slimforge bench spaces``: search spaces against hand-designed networks, by INT8 fronts on this machine.

Protocol (the co-design study's device experiment, REFERENCE.md §1, on the local CPU):

1. One SPOS supernet per space, trained on the training part (the validation part held out), and
   each zoo network trained from scratch on the same images for the same number of epochs, with the
   same optimiser (the study: batch 96, SGD 0.025 cosine, weight decay 3e-4, Nesterov).
2. Each space is searched (NSGA-II by default) for (error, INT8 latency): error with inherited
   weights and re-calibrated batch norm on the validation part, latency of the network quantized by
   ONNX Runtime (static QDQ INT8) and measured on this CPU.
3. Up to ``final_max`` networks of each space's front are retrained standalone from fresh weights with
   the zoo networks' budget (the study retrains searched networks before comparing; ``retrain=False``
   keeps the supernet's weights instead). They and every zoo network are deployed the same way:
   INT8-quantized, INT8 accuracy on the test part (ONNX Runtime), and all their latencies measured
   together, interleaved, under one protocol.
4. Per space, the non-dominated set of (INT8 latency, INT8 error) is its front; the figure shows the
   fronts and the zoo networks; the table says which networks each front dominates.

Each stage is resumable in the output directory: supernet checkpoints per epoch, weights per zoo
network and per retrained front network, every search evaluation and every final deployment stored
as made, measurements cached by ONNX hash and conditions.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.errors import InvalidInputError
from slimforge.bench._common import (
    bench_train_config,
    environment,
    front_2d,
    start_bench,
    train_supernets,
    write_result,
)
from slimforge.bench._int8 import Int8LatencyEvaluator, seeded_calibration
from slimforge.bench._spaces_config import (
    BENCH_SPACES,
    DEFAULT_SEARCH_SETTINGS,
    SpacesConfig,
    ZooEntry,
    cifar_zoo_model,
)
from slimforge.bench._spaces_final import (
    MEASUREMENTS,
    collect_points,
    compare,
    deploy,
    deploy_space,
    figure,
    measure,
)
from slimforge.bench._spaces_result import SpacesResult
from slimforge.bench._spaces_train import train_standalone
from slimforge.search import StoredEvaluator

__all__ = ["run_spaces_bench"]


def supernet_train_config(config: SpacesConfig, name: str) -> Any:
    """The :class:`~slimforge.supernet.TrainConfig` of benchmark space ``name``'s SPOS supernet."""
    return bench_train_config(
        config,
        epochs=config.supernet_train_epochs,
        space=BENCH_SPACES.get(name).space,
        space_kwargs=config.space_kwargs(name),
        method="spos",
        lr=config.lr,
        lr_schedule=config.lr_schedule,
        weight_decay=config.weight_decay,
    )


def run_spaces_bench(config: SpacesConfig, out_dir: str | Path, *, progress: bool = False) -> SpacesResult:
    """Compare search spaces with hand-designed networks by INT8 fronts on this CPU (module docstring).

    Args:
        config: the settings.
        out_dir: the benchmark directory (``spaces.json``, ``spaces_table.md``, ``spaces_fronts.png``,
            and every cached stage). Re-running resumes.
        progress: progress bars on stderr.

    Raises:
        InvalidInputError: unreadable data or data without a test part (before any training), a
            directory holding another benchmark, or stages trained with other settings.
    """
    from slimforge.data import load_dataset
    from slimforge.spaces import get_space

    start = time.perf_counter()
    out = Path(out_dir)
    splits = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    if splits.test is None:
        raise InvalidInputError(
            f"data {config.data} has no test part; bench spaces reports test error, so give data with one"
        )
    input_shape = (1, *splits.input_shape)
    spaces = {n: get_space(BENCH_SPACES.get(n).space, **config.space_kwargs(n)) for n in config.spaces}
    zoo = config.zoo_entries()
    for entry in zoo:
        cifar_zoo_model(entry, splits.num_classes, config.seed)  # a width the model lacks fails now
    train_device = start_bench(out, "spaces", config)
    calibration = seeded_calibration(splits.train, config.calibration_images, config.seed)

    supernets = train_supernets(
        config.spaces,
        functools.partial(supernet_train_config, config),
        out,
        device=train_device,
        progress=progress,
    )
    zoo_info, zoo_models = {}, {}
    for entry in zoo:
        model, info = _train_zoo(entry, splits, config, out / "zoo" / entry.key, progress)
        zoo_models[entry.key], zoo_info[entry.key] = model, info

    searches, finalists = {}, {}
    for name, space in spaces.items():
        searches[name], finalists[name] = _search(
            name, space, splits, calibration, config, out, train_device, progress
        )

    pending = []  # (group, label, arch, record, int8 path, search metrics)
    for name, space in spaces.items():
        pending += deploy_space(name, space, finalists[name], splits, calibration, config, out, progress)
    for entry in zoo:
        record = deploy(zoo_models[entry.key], out / "zoo" / entry.key, splits, calibration, config, out)
        pending.append(("zoo", entry.label, f"{entry.name}:{entry.width:g}", record, None))

    paths = [out / p[3]["onnx"] for p in pending]
    measured, measurement = measure(paths, input_shape, config, out, progress)
    points = collect_points(pending, measured)
    comparisons = compare(points, zoo)
    files = {"json": "spaces.json", "table": "spaces_table.md"}
    if config.png:
        files["figure"] = figure(out / "spaces_fronts.png", points, measurement).name
    result = SpacesResult(
        config=config.to_dict(),
        environment=environment(train_device),
        measurement=measurement,
        supernets=supernets,
        zoo=zoo_info,
        searches=searches,
        points=tuple(points),
        comparisons=tuple(comparisons),
        files=files,
        wall_s=time.perf_counter() - start,
    )
    return write_result(out, result)


def _train_zoo(
    entry: ZooEntry, splits: Any, config: SpacesConfig, directory: Path, progress: bool
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The zoo network trained on the training part (loaded when already trained with these settings)."""
    model = cifar_zoo_model(entry, splits.num_classes, config.seed)
    identity = {"model": entry.name, "width": entry.width}
    return train_standalone(
        model, identity, directory, splits, config, progress=progress, desc=f"train {entry.label}"
    )


def _search_settings(config: SpacesConfig) -> dict[str, Any]:
    """The configured settings less the defaults the algorithm does not take (a user's typo still fails)."""
    from slimforge.search.algorithms import ALGORITHMS, setting_names

    accepted = setting_names(ALGORITHMS.get(config.algorithm))
    if accepted is None:
        return dict(config.settings)
    return {
        k: v
        for k, v in config.settings.items()
        if k in accepted or not (k in DEFAULT_SEARCH_SETTINGS and DEFAULT_SEARCH_SETTINGS[k] == v)
    }


def _search(
    name: str,
    space: Any,
    splits: Any,
    calibration: np.ndarray,
    config: SpacesConfig,
    out: Path,
    device: str,
    progress: bool,
) -> tuple[dict[str, Any], list[Any]]:
    """Search one space for (validation error, INT8 latency); returns its summary and its finalists."""
    from slimforge.search import Problem, make_evaluator, minimize

    checkpoint = out / "supernets" / name
    proxy = StoredEvaluator(
        make_evaluator(
            "supernet_accuracy",
            space,
            checkpoint=checkpoint,
            split="val",
            bn_images=config.bn_images,
            device=device,
            seed=config.seed,
        ),
        checkpoint / "proxy.sqlite",
        ignore=("checkpoint",),
    )
    latency = StoredEvaluator(
        Int8LatencyEvaluator(
            space,
            calibration,
            threads=config.threads,
            time_cap_s=config.search_time_cap_s,
            num_classes=splits.num_classes,
            seed=config.seed,
            store_path=out / MEASUREMENTS,
        ),
        out / "search" / name / "int8_latency.sqlite",
    )
    try:
        problem = Problem(space, ("error", "latency_ms"), [proxy, latency])
        budget = min(config.budget, space.size)
        result = minimize(
            problem,
            config.algorithm,
            budget=budget,
            seed=config.seed,
            settings=_search_settings(config),
            progress=progress,
        )
    finally:
        proxy.close()
        latency.close()
    ok = [e for e in result.evaluations if e.feasible]
    points = np.array([[e.metrics["latency_ms"], e.metrics["error"]] for e in ok], dtype=float).reshape(-1, 2)
    front = [ok[i] for i in front_2d(points)]
    chosen = front
    if len(front) > config.final_max:
        # Evenly along the front (by rank in latency), both ends included.
        keep = np.unique(np.round(np.linspace(0, len(front) - 1, config.final_max)).astype(int))
        chosen = [front[i] for i in keep]
    summary = {
        "space": BENCH_SPACES.get(name).space,
        "options": config.space_kwargs(name),
        "label": BENCH_SPACES.get(name).label,
        "size": space.size,
        "algorithm": config.algorithm,
        "settings": result.settings,
        "budget": budget,
        "num_evaluations": result.num_evaluations,
        "stop_reason": result.stop_reason,
        "wall_s": result.wall_s,
        "front": [
            {
                "arch": e.arch,
                "search_error_pct": e.metrics["error"],
                "search_latency_ms": e.metrics["latency_ms"],
            }
            for e in front
        ],
        "finalists": [e.arch for e in chosen],
    }
    return summary, chosen
