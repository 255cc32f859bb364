"""The end of ``bench spaces``: INT8 deployment of finalists and zoo networks, one measurement, fronts.

Each front network is retrained standalone with the zoo networks' budget (``retrained/<space>/<hash>/``,
the study's protocol) or, with ``retrain=False``, keeps its supernet weights with batch norm
re-calibrated as in the search (``final/<space>/<hash>/``); its FP32 and INT8 test accuracy is
recorded and its INT8 file kept there (zoo networks: ``zoo/<network>/``);
then every INT8 file is measured in one interleaved call, so a change of machine load slows them
all alike. Per space, the non-dominated (latency, INT8 error) networks form its front.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.bench._common import front_2d, write_json_atomic
from slimforge.bench._int8 import export_int8, final_protocol
from slimforge.bench._spaces_config import BENCH_SPACES, SpacesConfig, ZooEntry
from slimforge.bench._spaces_result import SpacePoint
from slimforge.bench._spaces_train import train_standalone

__all__ = ["MEASUREMENTS", "collect_points", "compare", "deploy", "deploy_space", "figure", "measure"]

#: the measurement cache of a ``bench spaces`` directory (search and final latencies).
MEASUREMENTS = "measurements.sqlite"


def deploy_space(
    name: str,
    space: Any,
    finalists: list[Any],
    splits: Any,
    calibration: np.ndarray,
    config: SpacesConfig,
    out: Path,
    progress: bool = False,
) -> list[tuple[str, str, str, dict[str, Any], Any]]:
    """Deploy a space's finalists: retrained standalone (``config.retrain``) or with inherited weights.

    Retrained networks start from seeded fresh weights and get the zoo networks' training budget
    (``retrained/<space>/<hash>/``), as the study retrains searched networks before comparing them;
    inherited ones are extracted from the supernet with batch norm re-calibrated on the search's
    images (``final/<space>/<hash>/``).
    """
    if not finalists:
        return []
    if config.retrain:
        weights, root, make = "retrained", "retrained", _retrainer(name, space, splits, config, progress)
    else:
        weights, root, make = "inherited", "final", _inheritor(name, splits, config, out)
    entry = BENCH_SPACES.get(name)
    pending = []
    for evaluation in finalists:
        directory = out / root / name / hashlib.sha1(evaluation.arch.encode()).hexdigest()[:12]
        record = deploy(
            lambda e=evaluation, d=directory: make(e, d), directory, splits, calibration, config, out
        )
        pending.append((name, entry.label, evaluation.arch, {**record, "weights": weights}, evaluation))
    return pending


def _retrainer(
    name: str, space: Any, splits: Any, config: SpacesConfig, progress: bool
) -> Callable[[Any, Path], torch.nn.Module]:
    """Builds a finalist from seeded fresh weights and trains it with the zoo networks' budget."""
    entry = BENCH_SPACES.get(name)
    options = config.space_kwargs(name)

    def make(evaluation: Any, directory: Path) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            net = space.build(evaluation.genome, num_classes=splits.num_classes)
        identity = {"space": entry.space, "options": options, "arch": evaluation.arch}
        desc = f"retrain {entry.label} {evaluation.arch}"
        return train_standalone(net, identity, directory, splits, config, progress=progress, desc=desc)[0]

    return make


def _inheritor(
    name: str, splits: Any, config: SpacesConfig, out: Path
) -> Callable[[Any, Path], torch.nn.Module]:
    """Extracts a finalist from the space's supernet, batch norm re-calibrated as in the search."""
    from slimforge.supernet import load_supernet, recalibrate_bn

    supernet, train_config, _ = load_supernet(out / "supernets" / name, "cpu")
    recal = None
    if config.bn_images:
        from slimforge.data import sample_batch

        # The images and batch size of the search's re-calibration, so deployment matches the estimate.
        recal = sample_batch(splits.train, min(config.bn_images, len(splits.train)), seed=config.seed)[0]

    def make(evaluation: Any, directory: Path) -> torch.nn.Module:
        net = supernet.extract(evaluation.genome)
        if recal is not None:
            recalibrate_bn(net, recal, batch_size=train_config.batch_size)
        return net.eval()

    return make


def deploy(
    model: Any, directory: Path, splits: Any, calibration: np.ndarray, config: SpacesConfig, out: Path
) -> dict[str, Any]:
    """FP32 and INT8 test error of a network and its INT8 file (kept in ``directory/final.json``).

    ``model`` is the network or a function building it (only called when nothing is stored yet).
    """
    from slimforge.training import accuracy, onnx_accuracy

    record_path = directory / "final.json"
    if record_path.exists() and (directory / "int8.onnx").exists():
        return json.loads(record_path.read_text(encoding="utf-8"))
    net = model() if callable(model) and not isinstance(model, torch.nn.Module) else model
    net = net.cpu().eval()
    fp32 = accuracy(net, splits.test)
    _, int8_path = export_int8(net, (1, *splits.input_shape), calibration, directory)
    int8 = onnx_accuracy(int8_path, splits.test, threads=config.threads)
    record = {
        "onnx": str(int8_path.relative_to(out)),
        "fp32_error_pct": 100.0 - fp32,
        "int8_error_pct": 100.0 - int8,
        "num_params": sum(p.numel() for p in net.parameters()),
    }
    write_json_atomic(record_path, record)
    return record


def measure(
    paths: list[Path], input_shape: tuple[int, ...], config: SpacesConfig, out: Path, progress: bool
) -> tuple[list[Any], dict[str, Any]]:
    """Every INT8 file measured in one interleaved call (cached by ONNX hash and conditions)."""
    from slimforge.hardware import get_device, open_cache

    protocol = final_protocol(config.final_time_cap_s)
    store = open_cache(out / MEASUREMENTS)
    try:
        results = get_device("local-cpu").measure_many(
            paths,
            input_shape,
            threads=config.threads,
            protocol=protocol,
            seed=config.seed,
            store=store,
            energy=False,
            progress=progress,
        )
    finally:
        store.close()
    timed = [r.latency for r in results if r.latency is not None]
    measurement = {
        "conditions": timed[0].conditions() if timed else "no network measured",
        "protocol": protocol.to_dict(),
        "protocol_text": (
            "slimforge LatencyProtocol — median of timed runs after up to "
            f"{protocol.warmup_runs} warm-up runs, stopping once IQR/median <= "
            f"{protocol.rel_iqr_threshold:.0%} (at least {protocol.min_runs} runs and "
            f"{protocol.min_time_s:g} s) or at {protocol.time_cap_s:g} s; all networks interleaved in "
            "short blocks. "
            "The study: mean of 400 runs on an RK3588S NPU."
        ),
        "num_networks": len(results),
        "num_unstable": sum(1 for r in results if r.stable is False),
        "num_cached": sum(1 for r in results if r.cached),
    }
    return results, measurement


def collect_points(pending: list[tuple[Any, ...]], measured: list[Any]) -> list[SpacePoint]:
    points = []
    for (group, label, arch, record, evaluation), result in zip(pending, measured, strict=True):
        points.append(
            SpacePoint(
                group=group,
                label=label,
                arch=arch,
                num_params=int(record["num_params"]),
                fp32_error_pct=float(record["fp32_error_pct"]),
                int8_error_pct=float(record["int8_error_pct"]),
                latency_ms=float(result.latency_ms),
                latency_iqr_ms=result.latency_ms_iqr,
                stable=result.stable,
                proxy_error_pct=None if evaluation is None else float(evaluation.metrics["error"]),
                search_latency_ms=None if evaluation is None else float(evaluation.metrics["latency_ms"]),
                weights=record.get("weights", "trained"),
            )
        )
    out = []
    for group in dict.fromkeys(p.group for p in points):
        mine = [p for p in points if p.group == group]
        if group == "zoo":
            out += mine
            continue
        xy = np.array([[p.latency_ms, p.int8_error_pct] for p in mine], dtype=float)
        on = set(front_2d(xy).tolist())
        out += [dataclasses.replace(p, on_front=i in on) for i, p in enumerate(mine)]
    return out


def compare(points: list[SpacePoint], zoo: list[ZooEntry]) -> list[dict[str, Any]]:
    """Per (space, zoo network): does the front dominate the network, how much faster is it at equal error."""
    rows = []
    nets = [p for p in points if p.group == "zoo"]
    for group in dict.fromkeys(p.group for p in points if p.group != "zoo"):
        front = [p for p in points if p.group == group and p.on_front]
        for net in nets:
            dominates = any(
                f.latency_ms <= net.latency_ms
                and f.int8_error_pct <= net.int8_error_pct
                and (f.latency_ms < net.latency_ms or f.int8_error_pct < net.int8_error_pct)
                for f in front
            )
            as_good = [f.latency_ms for f in front if f.int8_error_pct <= net.int8_error_pct]
            rows.append(
                {
                    "space": group,
                    "space_label": BENCH_SPACES.get(group).label,
                    "zoo": net.arch,
                    "zoo_label": net.label,
                    "dominates": dominates,
                    "speedup_at_equal_error": net.latency_ms / min(as_good) if as_good else None,
                }
            )
    return rows


def figure(path: Path, points: list[SpacePoint], measurement: dict[str, Any]) -> Path:
    from slimforge.report import plot_fronts

    fronts, others = {}, []
    for group in dict.fromkeys(p.group for p in points if p.group != "zoo"):
        mine = [p for p in points if p.group == group]
        fronts[mine[0].label] = np.array([[p.latency_ms, p.int8_error_pct] for p in mine if p.on_front])
        others += [[p.latency_ms, p.int8_error_pct] for p in mine if not p.on_front]
    zoo = {p.label: (p.latency_ms, p.int8_error_pct) for p in points if p.group == "zoo"}
    return plot_fronts(
        fronts,
        path,
        "INT8 latency (ms, median; ONNX Runtime on this CPU)",
        "top-1 error (%, INT8, test images)",
        points=zoo,
        scatter={"deployed networks off the front": np.array(others, dtype=float).reshape(-1, 2)},
        title="search spaces vs hand-designed networks (INT8)",
    )
