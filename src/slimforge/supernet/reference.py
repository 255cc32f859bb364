"""The standalone reference: a seeded set of sub-networks trained alone with a supernet's recipe, cached.

It answers two questions a supernet's ranking raises. With an accuracy table (NAS-Bench-201), how
well do networks trained alone *on the same images with the same budget* rank against the table's
truth (the ceiling a supernet can hope for at that budget)? Without a table (the layer-wise spaces),
it *is* the truth a supernet's ranking is measured against.

Each architecture's result is written to ``DIR/reference.json`` as soon as it is trained, so an
interrupted build resumes where it stopped; a directory built with other settings is refused.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimforge.data import load_dataset
from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.spaces import Genome, SearchSpace, get_space
from slimforge.supernet._json import json_ready
from slimforge.supernet.config import TrainConfig
from slimforge.supernet.evaluate import EvalData
from slimforge.supernet.standalone import train_standalone

__all__ = ["REFERENCE_FILE", "Reference", "build_reference", "draw_architectures", "load_reference"]

REFERENCE_FILE = "reference.json"
FORMAT = "slimforge-standalone-reference/1"


@dataclass(frozen=True)
class Reference:
    """A standalone reference set; per-architecture tuples are in drawing order.

    ``kendall_tau`` / ``spearman_rho`` compare standalone accuracy with the table's (NaN without a table).
    """

    space: str
    config: dict[str, Any]
    seed: int
    table: str | None
    architectures: tuple[str, ...]
    accuracy_pct: tuple[float, ...]
    loss: tuple[float, ...]
    true_accuracy_pct: tuple[float, ...] | None
    train_time_s: float
    images_trained: int
    kendall_tau: float
    spearman_rho: float

    @property
    def num_architectures(self) -> int:
        """How many architectures the reference holds."""
        return len(self.architectures)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, NaN becomes None)."""
        return json_ready(self)


def draw_architectures(
    space: SearchSpace, sample: int, seed: int, table: str | Path | None = None
) -> list[tuple[Genome, float | None]]:
    """``sample`` architectures drawn with ``seed``: table rows (with their accuracy %) when a table is
    given, else distinct canonical genomes of ``space`` (accuracy None)."""
    from slimforge.supernet.rank import read_accuracy_table

    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 3:
        raise InvalidInputError(f"the reference needs at least 3 architectures, got {sample!r}")
    rng = np.random.default_rng(seed)
    if table is not None:
        rows = read_accuracy_table(table, space)
        if sample > len(rows):
            raise InvalidInputError(f"--sample {sample} exceeds the {len(rows)} rows of {table}")
        return [(rows[i][1], rows[i][2]) for i in rng.choice(len(rows), size=sample, replace=False)]
    seen: dict[Genome, None] = {}
    for _ in range(1000 * sample):
        seen.setdefault(space.canonical(space.sample(rng)), None)
        if len(seen) == sample:
            return [(g, None) for g in seen]
    raise InvalidInputError(
        f"the {space.name!r} space has fewer than {sample} distinct networks; ask for fewer (--sample)"
    )


def _settings(config: TrainConfig, sample: int, seed: int, table: str | Path | None) -> dict[str, Any]:
    return {"config": config.to_dict(), "sample": sample, "seed": seed, "table": None if table is None else str(table)}


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT or not isinstance(doc.get("results"), dict):
            raise ValueError(f"format {doc.get('format')!r}")
        return doc
    except (ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path} is not a slimforge standalone reference ({exc}); use another --out") from None


def build_reference(
    out_dir: str | Path,
    config: TrainConfig,
    *,
    sample: int = 20,
    seed: int = 0,
    table: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Reference:
    """Train ``sample`` seeded architectures of ``config.space`` standalone with ``config``'s recipe.

    Each is scored on the data's test part (validation part when there is none); results already in
    ``out_dir`` with the same settings are reused, so the build resumes after an interruption.

    Args:
        out_dir: the cache directory (``reference.json``).
        config: the recipe (data, space, epochs, batch, SGD settings, seed); ``method`` only decides
            which images are trained on (the same as that method's supernet).
        sample: architectures (>= 3).
        seed: draws the architectures.
        table: an accuracy table to draw from and compare with (NAS-Bench-201); None draws from the space.
        progress: called with (architectures done, total).
    """
    from slimforge.io import atomic_write_json
    from slimforge.supernet.train import resolve_device

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    dev = resolve_device(device)
    space = get_space(config.space, **config.space_kwargs)
    drawn = draw_architectures(space, sample, seed, table)
    path = Path(out_dir) / REFERENCE_FILE
    settings = _settings(config, sample, seed, table)
    doc = _read(path)
    if doc is not None and doc.get("settings") != json.loads(json.dumps(settings)):
        raise InvalidInputError(
            f"{path.parent} holds a standalone reference built with other settings; use another --out"
        )
    if doc is None:
        doc = {"format": FORMAT, "settings": settings, "results": {}}
    splits = load_dataset(config.data, val_fraction=config.val_fraction, seed=config.seed)
    data = EvalData.from_splits(splits, split="test", recal_images=0, device=dev)
    for done, (genome, _) in enumerate(drawn, start=1):
        key = space.to_string(genome)
        if key not in doc["results"]:
            score = train_standalone(space, genome, splits, config, data, device=dev)
            doc["results"][key] = dataclasses.asdict(score)
            atomic_write_json(path, doc)
        if progress is not None:
            progress(done, len(drawn))
    return _summary(space, doc, drawn)


def load_reference(directory: str | Path) -> Reference:
    """The reference :func:`build_reference` wrote into ``directory`` (it must be complete)."""
    path = Path(directory) / REFERENCE_FILE
    doc = _read(path)
    if doc is None:
        raise ModelFileError(f"{path} does not exist; build it with 'slimforge supernet standalone --out {directory}'")
    s = doc["settings"]
    try:
        config = TrainConfig.from_dict(s["config"])
        space = get_space(config.space, **config.space_kwargs)
        drawn = draw_architectures(space, int(s["sample"]), int(s["seed"]), s["table"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has damaged settings ({exc}); build it again") from None
    missing = [g for g, _ in drawn if space.to_string(g) not in doc["results"]]
    if missing:
        raise InvalidInputError(
            f"{path.parent} is incomplete ({len(missing)} of {len(drawn)} architectures untrained); "
            "run the same 'slimforge supernet standalone' command again to finish it"
        )
    return _summary(space, doc, drawn)


def _summary(space: SearchSpace, doc: dict[str, Any], drawn: list[tuple[Genome, float | None]]) -> Reference:
    from slimforge.supernet.rank import rank_correlations

    s = doc["settings"]
    keys = [space.to_string(g) for g, _ in drawn]
    results = [doc["results"][k] for k in keys]
    acc = tuple(100.0 * float(r["accuracy"]) for r in results)
    truth = None if s["table"] is None else tuple(float(t) for _, t in drawn)  # type: ignore[arg-type]
    tau, rho = (float("nan"), float("nan")) if truth is None else rank_correlations(np.array(acc), np.array(truth))
    return Reference(
        space=space.name,
        config=dict(s["config"]),
        seed=int(s["seed"]),
        table=s["table"],
        architectures=tuple(keys),
        accuracy_pct=acc,
        loss=tuple(float(r["loss"]) for r in results),
        true_accuracy_pct=truth,
        train_time_s=float(sum(r["train_time_s"] for r in results)),
        images_trained=int(sum(r["images_trained"] for r in results)),
        kendall_tau=tau,
        spearman_rho=rho,
    )
