"""What the automated compression searches share: the accuracy estimate, search settings, result rows.

The accuracy estimate every policy search scores candidates with (:func:`estimate_accuracy`) is
cheap by design: optionally a few SGD steps on training images, then batch-norm re-calibration on a
few hundred training images (the statistics of a pruned or quantized network differ from the
original's, and re-calibrating them recovers most of the accuracy a finetune would at once;
Li et al., "EagleEye", ECCV 2020), then top-1 accuracy on the *validation* split. The test split is
only ever used to report the final models.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.hardware._json import JsonRecord

__all__ = [
    "AutoRow",
    "EstimateConfig",
    "EstimateData",
    "PolicyPoint",
    "check_algorithm",
    "check_count",
    "check_out_dir",
    "closest",
    "estimate_accuracy",
    "finetune_model",
    "front_points",
    "has_batchnorm",
    "load_splits",
    "measure_model_latencies",
    "run_policy_search",
    "search_message",
    "search_settings",
    "write_result",
]


def check_count(name: str, value: object, lowest: int) -> int:
    """``value`` as an int >= ``lowest``, or a one-line error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise InvalidInputError(f"{name} must be an integer >= {lowest}, got {value!r}")
    return value


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer that tracks running statistics."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules()
    )


def load_splits(data: str | DatasetSplits, split_seed: int, val_fraction: float = 0.1) -> DatasetSplits:
    """``data`` loaded (a spec) or as given; the validation split is drawn with ``split_seed``."""
    if isinstance(data, DatasetSplits):
        return data
    from slimforge.data import load_dataset

    return load_dataset(data, val_fraction=val_fraction, seed=split_seed)


@dataclass(frozen=True)
class EstimateConfig(JsonRecord):
    """How a candidate policy's accuracy is estimated during a search.

    Args:
        recal_images: training images that re-calibrate batch-norm statistics (0: off).
        val_images: validation images the accuracy is measured on (0: the whole validation split).
        finetune_steps: SGD steps on training batches before re-calibration (0: none).
        finetune_lr: learning rate of those steps.
        batch_size: batch size of those steps and of re-calibration.
    """

    recal_images: int = 256
    val_images: int = 0
    finetune_steps: int = 0
    finetune_lr: float = 0.01
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("recal_images", "val_images", "finetune_steps"):
            check_count(name, getattr(self, name), 0)
        check_count("batch_size", self.batch_size, 1)
        if isinstance(self.finetune_lr, bool) or not isinstance(self.finetune_lr, (int, float)) or not (
            0 < self.finetune_lr < math.inf
        ):
            raise InvalidInputError(f"finetune_lr must be a positive number, got {self.finetune_lr!r}")

    def describe(self, what: str, num_val: int, bn: bool = True) -> str:
        """The estimate in one sentence, for reports."""
        steps = f" + {self.finetune_steps} SGD steps (lr {self.finetune_lr:g})" if self.finetune_steps else ""
        recal = (
            f" + BN re-calibration on {self.recal_images} training images"
            if self.recal_images and bn
            else " (no BN re-calibration: the model has no BatchNorm)"
            if self.recal_images
            else ""
        )
        return f"top-1 accuracy on {num_val} validation images after {what}{steps}{recal}"


@dataclass(frozen=True, eq=False)
class EstimateData:
    """The tensors :func:`estimate_accuracy` uses, drawn once so every candidate sees the same images."""

    recal_images: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    splits: DatasetSplits
    seed: int

    @classmethod
    def from_splits(cls, splits: DatasetSplits, config: EstimateConfig, seed: int) -> EstimateData:
        """Draw the re-calibration images (training split) and the validation images with ``seed``."""
        from slimforge.data import sample_batch

        n_recal = min(config.recal_images, len(splits.train))
        recal = sample_batch(splits.train, n_recal, seed=seed)[0] if n_recal else torch.empty(0)
        n_val = len(splits.val) if config.val_images == 0 else min(config.val_images, len(splits.val))
        images, labels = sample_batch(splits.val, n_val, seed=seed + 1)
        return cls(recal, images, labels, splits, seed)


@torch.no_grad()
def _top1(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / max(1, len(labels))


def _sgd_steps(model: nn.Module, data: EstimateData, config: EstimateConfig) -> None:
    from slimforge.data import make_loader

    loader = make_loader(data.splits.train, config.batch_size, train=True, seed=data.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.finetune_lr, momentum=0.9, nesterov=True)
    model.train()
    step, epoch = 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(data.seed)  # dropout draws: the same candidate gets the same estimate
        while step < config.finetune_steps:
            for images, labels in loader.epoch(epoch):
                loss = nn.functional.cross_entropy(model(images), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step >= config.finetune_steps:
                    break
            epoch += 1
    model.zero_grad(set_to_none=True)
    model.eval()


def estimate_accuracy(model: nn.Module, data: EstimateData, config: EstimateConfig) -> float:
    """The search's accuracy estimate (%) of ``model``: SGD steps, BN re-calibration, validation top-1.

    ``model`` is changed in place (its BN statistics, and its weights when ``finetune_steps`` > 0).
    """
    from slimforge.supernet import recalibrate_bn

    if config.finetune_steps:
        _sgd_steps(model, data, config)
    if len(data.recal_images) and has_batchnorm(model):
        recalibrate_bn(model, data.recal_images, batch_size=config.batch_size)
    return _top1(model, data.val_images, data.val_labels)


# ---- the search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchArgs:
    """The checked arguments every automated search shares (see :func:`check_search_args`)."""

    budget: Any
    search_budget: int
    algorithm: str
    finetune_epochs: int
    out: Path | None


def check_search_args(
    budget: Any,
    keys: Sequence[str],
    what: str,
    search_budget: int,
    algorithm: str,
    finetune_epochs: int,
    out_dir: str | Path | None,
    overwrite: bool,
) -> SearchArgs:
    """Check what every automated search takes, before any work: budget, sizes, algorithm, output."""
    from slimforge.compress._budget import parse_budget

    return SearchArgs(
        budget=parse_budget(budget, keys, what=what),
        search_budget=check_count("search budget", search_budget, 1),
        algorithm=check_algorithm(algorithm),
        finetune_epochs=check_count("finetune epochs", finetune_epochs, 0),
        out=check_out_dir(out_dir, overwrite),
    )


def load_source(
    model: Any, splits: DatasetSplits, width: float | None, model_config: Mapping[str, Any] | None
) -> Any:
    """The model to compress (:func:`slimforge.compress._models.resolve_model`); warns when it is untrained."""
    from slimforge.compress._models import resolve_model

    source = resolve_model(
        model, num_classes=splits.num_classes, width=width, config=dict(model_config or {}) or None
    )
    if not source.trained:
        warnings.warn(
            f"{source.label} is untrained (a zoo name): train it first (slimforge compress --train)",
            UserWarning,
            stacklevel=3,
        )
    return source


def check_algorithm(algorithm: str) -> str:
    """``algorithm`` if :data:`slimforge.search.ALGORITHMS` has it (checked before any work starts)."""
    from slimforge.search.algorithms import ALGORITHMS

    ALGORITHMS.get(algorithm)  # an unknown name raises with close matches
    return algorithm


def search_settings(
    algorithm: str, budget: int, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Algorithm settings scaled to a small evaluation budget (a policy evaluation costs seconds).

    The engine's defaults (a population of 50, 50 children per generation) would spend a budget of
    40 on the initial sample alone; here the population is about a quarter of the budget (4 to 50)
    so that several generations run. ``overrides`` win.
    """
    from slimforge.search.algorithms import ALGORITHMS, setting_names

    if not isinstance(algorithm, str):
        return dict(overrides or {})
    accepted = setting_names(ALGORITHMS.get(algorithm)) or set()
    pop = max(4, min(50, budget // 4))
    proposal = {
        "pop_size": pop,
        "iterations": None,
        "n_parents": max(2, pop // 2),
        "n_crossover": max(1, (2 * pop) // 5),
        "n_mutation": max(1, pop // 2),
        "n_random": max(1, pop - (2 * pop) // 5 - pop // 2),
        "population_size": max(2, pop),
        "sample_size": max(1, pop // 3),
        "n_init": pop,
        "batch_size": max(1, pop // 2),
    }
    settings = {k: v for k, v in proposal.items() if k in accepted}
    settings.update(overrides or {})
    return settings


def run_policy_search(
    problem: Any,
    algorithm: str,
    *,
    budget: int,
    seed: int,
    settings: Mapping[str, Any] | None,
    progress: bool,
) -> Any:
    """:func:`slimforge.search.minimize` with :func:`search_settings` (in-process: evaluators hold models)."""
    from slimforge.search import minimize

    budget = check_count("search budget", budget, 1)
    budget = min(budget, problem.space.size)
    return minimize(
        problem,
        algorithm,
        budget=budget,
        seed=seed,
        settings=search_settings(algorithm, budget, settings),
        progress=progress,
    )


@dataclass(frozen=True)
class PolicyPoint(JsonRecord):
    """One point of a searched front: the policy (values in gene order), its estimate and its cost."""

    policy: str
    error: float
    cost: float
    feasible: bool


def front_points(result: Any, cost: str) -> tuple[PolicyPoint, ...]:
    """The feasible non-dominated policies of a search result, cheapest first."""
    points = [
        PolicyPoint(e.arch, e.objectives["error"], e.objectives[cost], e.feasible) for e in result.front
    ]
    return tuple(sorted(points, key=lambda p: (p.cost, p.error)))


def search_message(result: Any, metric: str, bound: float, what: str = "policies") -> str:
    """One line on the search: how many candidates met the bound, or that none did."""
    if not result.num_feasible:
        return (
            f"no {what} within {metric} <= {bound:.4g} found in {result.num_evaluations} evaluations; "
            "showing the closest (raise --search-budget)"
        )
    return (
        f"best of {result.num_feasible} feasible {what} out of {result.num_evaluations} "
        f"({metric} <= {bound:.4g})"
    )


def closest(result: Any, metric: str) -> Any:
    """The best feasible evaluation (lowest error, then lowest cost), or the least violating one."""
    feasible = [e for e in result.evaluations if e.feasible]
    if feasible:
        return min(feasible, key=lambda e: (e.metrics["error"], e.metrics[metric]))
    return min(result.evaluations, key=lambda e: (e.violation, e.metrics["error"]))


def finetune_model(
    model: nn.Module,
    splits: DatasetSplits,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    hooks: Sequence[Any] = (),
) -> None:
    """Finetune ``model`` in place (SGD + cosine, :func:`train_classifier`); the seed also fixes dropout."""
    from slimforge.compress._train import TrainConfig, train_classifier

    if epochs == 0:
        return
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train_classifier(model, splits.train, config, hooks=hooks)


# ---- result rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoRow(JsonRecord):
    """One compressed model of a comparison, measured after its finetune.

    ``estimate_accuracy_pct`` is the search's estimate (before finetuning, validation split);
    ``val_accuracy_pct`` / ``test_accuracy_pct`` are measured after finetuning. ``cost`` is the
    budget's metric, ``within_budget`` whether it meets the bound. ``bytes`` counts weights as stored
    (4 bytes per float parameter; packed k-bit weights plus their scales or codebooks for quantized
    layers); ``latency_ms`` is ONNX Runtime's (1 thread, batch 1) where measured.
    """

    name: str
    policy: str
    estimate_accuracy_pct: float
    val_accuracy_pct: float
    test_accuracy_pct: float | None
    macs: int
    num_params: int
    bytes: int
    latency_ms: float | None
    cost: float
    within_budget: bool
    finetune_epochs: int
    avg_weight_bits: float | None = None
    bitops: float | None = None


def measure_model_latencies(
    models: Sequence[nn.Module], input_shape: Sequence[int], *, time_cap_s: float
) -> tuple[list[float], str]:
    """ONNX Runtime median latencies (1 thread, batch 1) of ``models``, their runs interleaved."""
    from slimforge.hardware import LatencyProtocol, measure_latencies

    protocol = LatencyProtocol(
        time_cap_s=time_cap_s, min_time_s=min(0.5, time_cap_s), warmup_s=min(0.2, time_cap_s), warmup_runs=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = measure_latencies(list(models), tuple(input_shape), threads=1, protocol=protocol)
    return [r.latency_ms_median for r in results], results[0].conditions() if results else ""


def write_result(
    out_dir: str | Path | None, name: str, result: JsonRecord, searches: Mapping[str, Any]
) -> None:
    """Write ``name.json`` (the result) and ``searches.json`` (every evaluation of every search)."""
    if out_dir is None:
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(result.to_json() + "\n", encoding="utf-8")
    doc = {k: v.to_dict(include_evaluations=True) for k, v in searches.items()}
    (out / "searches.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def check_out_dir(out_dir: str | Path | None, overwrite: bool) -> Path | None:
    """``out_dir`` as a Path, refusing a non-empty one unless ``overwrite`` (then it is emptied)."""
    import shutil

    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InvalidInputError(
                f"{out} already exists and is not empty; choose another --out or pass --overwrite"
            )
        shutil.rmtree(out)
    return out
