"""What the benchmarks share: the output directory, JSON and Markdown writers, devices, supernet training."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from slimforge.errors import InvalidInputError
from slimforge.io import atomic_write_text, jsonable, progress_bar

__all__ = [
    "BenchRecord",
    "bench_train_config",
    "claim_out_dir",
    "environment",
    "front_2d",
    "jsonable",
    "markdown_table",
    "resolve_train_device",
    "start_bench",
    "train_or_resume",
    "train_supernets",
    "write_json_atomic",
    "write_result",
    "write_text_atomic",
]

_MARKER = "bench.json"


_R = TypeVar("_R", bound="BenchRecord")
_T = TypeVar("_T")


class BenchRecord:
    """Base of a benchmark's frozen dataclass records: a strict-JSON dict and back.

    :attr:`nested` names the fields that hold a tuple of other records, and their class.
    """

    nested: ClassVar[Mapping[str, type[BenchRecord]]] = {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_R], data: Mapping[str, Any]) -> _R:
        """Inverse of :meth:`to_dict`: nested records rebuilt, the other lists back to tuples."""
        values = {}
        for key, value in data.items():
            if key in cls.nested:
                value = tuple(cls.nested[key].from_dict(v) for v in value)
            elif isinstance(value, list):
                value = tuple(value)
            values[key] = value
        return cls(**values)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` through a temporary file (:func:`slimforge.io.atomic_write_text`)."""
    return atomic_write_text(path, text)


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as strict JSON (NaN as null) through a temporary file."""
    return write_text_atomic(path, json.dumps(jsonable(data), indent=1) + "\n")


def write_result(out: Path, result: _T) -> _T:
    """Write a benchmark's ``result`` in ``out``: JSON as ``files["json"]``, its table as ``files["table"]``."""
    files = result.files  # type: ignore[attr-defined]
    write_json_atomic(out / files["json"], result.to_dict())  # type: ignore[attr-defined]
    write_text_atomic(out / files["table"], result.format_table() + "\n")  # type: ignore[attr-defined]
    return result


def bench_train_config(config: Any, **fields: Any) -> Any:
    """A benchmark's supernet :class:`~slimforge.supernet.TrainConfig`: ``fields`` set on the shared part.

    The shared part is the benchmark's data, batch size and seed, and its validation part held out
    (the search's accuracy estimate scores on it).
    """
    from slimforge.supernet import TrainConfig

    return TrainConfig(
        data=config.data,
        batch_size=config.batch_size,
        val_fraction=config.val_fraction,
        hold_out_val=True,
        seed=config.seed,
        **fields,
    )


def start_bench(out: Path, kind: str, config: Any) -> str:
    """Claim ``out`` for a ``kind`` benchmark and record ``config`` there (``config.json``).

    Returns:
        The device the supernets train on (``config.train_device`` resolved, checked first).
    """
    train_device = resolve_train_device(config.train_device)
    claim_out_dir(out, kind)
    write_json_atomic(out / "config.json", config.to_dict())
    return train_device


def claim_out_dir(out: Path, kind: str) -> None:
    """Make ``out`` the directory of a ``kind`` benchmark; one of another kind is refused."""
    from slimforge import __version__

    marker = out / _MARKER
    if marker.exists():
        try:
            held = json.loads(marker.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            held = None
        if held != kind:
            raise InvalidInputError(
                f"{out} holds {'a bench ' + str(held) if held else 'something other than a'} run, "
                f"not a bench {kind} one; choose another --out"
            )
        return
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a directory")
    if out.is_dir() and any(out.iterdir()):
        raise InvalidInputError(
            f"--out {out} is a non-empty directory of something else; choose another --out"
        )
    write_json_atomic(marker, {"kind": kind, "slimforge_version": __version__})


def front_2d(points: Any) -> Any:
    """Indices of the non-dominated rows of an ``(n, 2)`` array (both minimised), by the first column."""
    import numpy as np

    from slimforge.search.pareto import pareto_mask

    points = np.asarray(points, dtype=float).reshape(-1, 2)
    idx = np.flatnonzero(pareto_mask(points)) if len(points) else np.array([], dtype=int)
    return idx[np.argsort(points[idx, 0], kind="stable")]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; pipes in cells (NAS-Bench-201 strings) are escaped, in code spans too."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "---|" * len(header)]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def resolve_train_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; other names are checked as given."""
    import torch

    from slimforge.supernet import resolve_device

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(resolve_device(name))


def environment(train_device: str) -> dict[str, Any]:
    """The machine and software the figures were taken on (for the JSON and the table header)."""
    import platform

    import onnxruntime
    import torch

    from slimforge import __version__
    from slimforge.hardware import cpu_model

    gpu = None
    if train_device.startswith("cuda"):
        gpu = torch.cuda.get_device_name(torch.device(train_device))
    return {
        "slimforge": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "train_device": train_device,
        "gpu": gpu,
        "date": time.strftime("%Y-%m-%d"),
    }


def train_or_resume(config: Any, out_dir: Path, *, device: str, progress: bool, desc: str) -> dict[str, Any]:
    """Train the supernet ``config`` describes in ``out_dir``, resuming its checkpoint if there is one.

    Returns the :class:`~slimforge.supernet.TrainResult` as a dict plus ``train_s_total``, the
    training seconds summed over every call (kept in ``out_dir/bench_train.json``).
    """
    from slimforge.supernet import train_supernet
    from slimforge.supernet.checkpoint import has_checkpoint

    bar = progress_bar(None, desc, "step", enabled=progress)

    def report(p: Any) -> None:
        bar.total = p.total_steps
        bar.set_postfix_str(f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f}", refresh=False)
        bar.update(p.step - bar.n)

    try:
        result = train_supernet(
            config, out_dir, device=device, resume=has_checkpoint(out_dir), progress=report
        )
    finally:
        bar.close()
    ledger = out_dir / "bench_train.json"
    total = 0.0
    if ledger.exists():
        try:
            total = float(json.loads(ledger.read_text(encoding="utf-8")).get("train_s_total", 0.0))
        except (OSError, ValueError, TypeError, AttributeError):
            total = 0.0
    total += result.wall_time_s
    write_json_atomic(ledger, {"train_s_total": total})
    if not result.finished:
        raise InvalidInputError(
            f"supernet training in {out_dir} stopped before the end; run again to resume it"
        )
    return {**result.to_dict(), "train_s_total": total}


def train_supernets(
    names: Sequence[str], train_config: Callable[[str], Any], out: Path, *, device: str, progress: bool
) -> dict[str, dict[str, Any]]:
    """Train (or resume) one supernet per name, ``train_config(name)`` in ``out/supernets/NAME``.

    Returns:
        Each one's :func:`train_or_resume` result, by name, trained in the order of ``names``.
    """
    return {
        name: train_or_resume(
            train_config(name),
            out / "supernets" / name,
            device=device,
            progress=progress,
            desc=f"supernet {name}",
        )
        for name in names
    }
