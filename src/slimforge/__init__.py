"""slimforge: design small, fast neural networks for a dataset and a device.

The public API, small and stable (each returns a typed, frozen result)::

    import slimforge

    slimforge.profile("mobilenet_v2")                          # params, MACs, memory, latency
    slimforge.measure("runs/x/models/cpu-knee", "local-cpu")   # a latency with its conditions
    slimforge.compress("tiny.py:TinyCNN", "npz:data.npz", "prune:l1:0.3,quantize:int8", "out/",
                       weights="tiny.pt")
    slimforge.search("nb201", accuracy="table:acc.csv", device="table:pi5.csv", budget=500)
    slimforge.run({"data": "digits", "search": {"budget": 100}}, "runs/x")
    slimforge.export("runs/x/models/cpu-knee/pytorch", "tflite", "out/")
    slimforge.get_space("mypkg.spaces:TinySpace"); slimforge.create_model("resnet20", num_classes=10)

A MODEL is a zoo name, a saved model directory, an ``.onnx`` file (profile, measure, export) or a
reference to a factory of your own, ``path/to/file.py:factory`` or ``package.module:factory`` (with
``model_args`` and optionally ``weights``, a state_dict file). Your code is imported only for a
reference you give. Everything deeper lives in the sub-packages (see the README's architecture).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slimforge.errors import SlimforgeError

if TYPE_CHECKING:  # the API's result types, without importing torch at `import slimforge`
    from torch import nn

__all__ = [
    "SlimforgeError",
    "__version__",
    "compress",
    "create_model",
    "export",
    "get_space",
    "load_model",
    "measure",
    "profile",
    "run",
    "search",
]
__version__ = "0.1.0"


class _CallableModule(__import__("types").ModuleType):
    """A package that is also the API function of its name: ``slimforge.search(...)`` and
    ``slimforge.compress(...)`` call the functions below, while ``slimforge.search.minimize`` and
    ``slimforge.compress.auto_prune`` stay the packages' own names."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _API[self.__name__.rpartition(".")[2]](*args, **kwargs)


def _make_callable(module: Any) -> None:
    """Called at the end of ``slimforge.search`` and ``slimforge.compress``'s ``__init__``."""
    module.__class__ = _CallableModule


def _model(
    model: Any, *, num_classes: int | None = None, model_args: Mapping[str, Any] | None = None,
    weights: str | os.PathLike | None = None, allow_onnx: bool = False,
) -> tuple[Any, tuple[int, ...] | None, dict[str, Any] | None]:
    """(a module or an .onnx path, its own input shape, the config that rebuilds it)."""
    from pathlib import Path

    from slimforge.io import open_model

    if allow_onnx and isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.suffix.lower() == ".onnx":
            return path, None, None
        if path.is_dir() and not (path / "model.json").is_file() and (path / "model.onnx").is_file():
            return path / "model.onnx", None, None  # a run's model folder: its deployable file
    source = open_model(model, num_classes=num_classes, model_args=model_args, weights=weights)
    return source.model, source.input_shape, source.config


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """A fresh network: a zoo name (``create_model("resnet20", num_classes=10)``) or a factory
    reference (``create_model("tiny.py:TinyCNN", width=8)``)."""
    from slimforge.io import open_model

    return open_model(name, model_args=kwargs).model


def load_model(path: str | os.PathLike) -> nn.Module:
    """A saved slimforge model directory (``model.json`` + ``model.pt``, read with ``weights_only=True``)."""
    from slimforge.io import load_model as _load

    return _load(path)


def get_space(name: str, **options: Any) -> Any:
    """A search space: ``nb201``, ``mbv2``, ``shufflenet``, or your own by reference (``mypkg:TinySpace``)."""
    from slimforge.spaces import get_space as _get

    return _get(name, **options)


def profile(
    model: Any, input_shape: Sequence[int] | str | None = None, *, runtime: str = "onnxruntime", threads: int = 1,
    measure_latency: bool = True, model_args: Mapping[str, Any] | None = None,
    weights: str | os.PathLike | None = None,
) -> Any:
    """Parameters, MACs/FLOPs, peak activation memory, size, a per-layer table and latency
    (:class:`slimforge.hardware.ModelProfile`); ``input_shape`` defaults to the model's own."""
    from slimforge.hardware import profile_model

    resolved, shape, _ = _model(model, model_args=model_args, weights=weights, allow_onnx=True)
    return profile_model(resolved, input_shape or shape or (1, 3, 224, 224), runtime=runtime, threads=threads,
                         measure_latency=measure_latency)


def measure(
    model: Any, device: str = "local-cpu", *, input_shape: Sequence[int] | str | None = None, threads: int = 1,
    time_cap_s: float = 10.0, model_args: Mapping[str, Any] | None = None,
    weights: str | os.PathLike | None = None, token_file: str | None = None,
) -> Any:
    """One model's latency (and energy) on ``device`` (``local-cpu``, ``local-litert``, ``remote:URL``,
    ...), with every condition it was measured under (:class:`slimforge.hardware.DeviceMeasurement`)."""
    from slimforge.hardware import LatencyProtocol, get_device

    options = {"token_file": token_file} if token_file else {}
    dev = get_device(device, **options)
    resolved, shape, _ = _model(model, model_args=model_args, weights=weights, allow_onnx=True)
    return dev.measure(resolved, input_shape or shape, threads=threads, protocol=LatencyProtocol(time_cap_s=time_cap_s))


def _compress_api(
    model: Any, data: Any, recipe: str, out_dir: str | os.PathLike, *,
    model_args: Mapping[str, Any] | None = None, weights: str | os.PathLike | None = None, **options: Any,
) -> Any:
    """Compress MODEL by ``recipe`` on ``data`` with every stage measured and gated
    (:func:`slimforge.compress.compress`; returns its :class:`~slimforge.compress.CompressionReport`)."""
    from slimforge.compress import compress as _compress
    from slimforge.io import is_reference

    if isinstance(model, str) and is_reference(model):
        resolved, _, config = _model(model, model_args=model_args, weights=weights)
        return _compress(resolved, data, recipe, out_dir, model_config=config, **options)
    return _compress(model, data, recipe, out_dir, **options)


def _search_api(
    space: Any, objectives: str | Sequence[str] = ("error", "latency_ms"), *, accuracy: str | None = None,
    device: str | None = None, constraints: Sequence[str] = (), budget: int = 200, algorithm: str = "auto",
    seed: int = 0, store: str | os.PathLike | None = None, **options: Any,
) -> Any:
    """The accuracy-vs-cost Pareto front of ``space`` (:class:`slimforge.search.SearchResult`).

    ``accuracy``: ``table:FILE``, ``supernet:DIR``, ``proxy:NAMES``, ``predictor:FILE``; ``device``:
    ``table:FILE``, ``lut:FILE``, ``predictor:FILE`` or a measured device. ``store``: a run store file
    that keeps every evaluation (and makes the search resumable). Further ``options`` go to
    :func:`slimforge.search.build_problem`.
    """
    from slimforge.io import RunStore
    from slimforge.search import build_problem, minimize

    problem = build_problem(space, objectives, accuracy=accuracy, device=device, constraints=constraints, **options)
    if store is None:
        return minimize(problem, algorithm, budget=budget, seed=seed)
    with RunStore(store) as opened:
        return minimize(problem, algorithm, budget=budget, seed=seed, store=opened, resume=len(opened) > 0)


def run(config: Any, out_dir: str | os.PathLike, **options: Any) -> Any:
    """The whole design run (:func:`slimforge.runs.run_pipeline`); ``config`` is a :class:`RunConfig`,
    a mapping of settings or a YAML file's path."""
    from pathlib import Path

    from slimforge.runs import RunConfig, load_config, run_pipeline

    if isinstance(config, (str, os.PathLike)) and Path(config).suffix.lower() in (".yaml", ".yml"):
        config = load_config(config)
    elif isinstance(config, Mapping):
        config = RunConfig.from_dict(config)
    return run_pipeline(config, out_dir, **options)


def export(
    model: Any, fmt: str, out_dir: str | os.PathLike, *, input_shape: Sequence[int] | str | None = None,
    model_args: Mapping[str, Any] | None = None, weights: str | os.PathLike | None = None, **options: Any,
) -> Any:
    """Convert MODEL to ``fmt`` (onnx, tflite, openvino, executorch, rknn, torchscript) and check its outputs
    against the model (:func:`slimforge.hardware.export.export_model`)."""
    from slimforge.hardware.export import export_model

    resolved, shape, _ = _model(model, model_args=model_args, weights=weights, allow_onnx=True)
    return export_model(resolved, fmt, out_dir, input_shape=input_shape or shape, **options)


#: the API functions whose names are also sub-packages (see :class:`_CallableModule`).
_API = {"compress": _compress_api, "search": _search_api}


def __getattr__(name: str) -> Any:
    # ``slimforge.compress`` and ``slimforge.search`` are the sub-packages, made callable on import
    # (binding the functions here instead would hide the packages behind them once both exist).
    if name in _API:
        import importlib

        return importlib.import_module(f"slimforge.{name}")
    raise AttributeError(f"module 'slimforge' has no attribute {name!r}")
