"""The structure of a compressed model as JSON, and the ``compressed`` model builder that rebuilds it.

Compression changes layer shapes (pruned channels) and replaces layers (low-rank factors,
quantized layers), so a compressed model no longer matches its zoo config. Its ``model.json``
therefore records the *base* config (what the model was built from) plus every layer of a kind
listed in :data:`LAYER_KINDS`, with its type and shapes. Rebuilding builds the base, then puts a
freshly built layer of the recorded shape at each recorded path; the forward code of the blocks
around those layers is slimforge's own, so nothing from the compression run is needed to reload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.registry import Registry

__all__ = [
    "LAYER_KINDS",
    "LayerKind",
    "build_compressed",
    "compressed_config",
    "describe_layers",
    "save_compressed",
]

BUILDER_NAME = "compressed"


@dataclass(frozen=True)
class LayerKind:
    """How one layer type is written to JSON (``describe``) and built back (``build``)."""

    cls: type[nn.Module]
    describe: Callable[[nn.Module], dict[str, Any]]
    build: Callable[[Mapping[str, Any]], nn.Module]


def _describe_conv(m: nn.Module) -> dict[str, Any]:
    assert isinstance(m, nn.Conv2d)
    return {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": list(m.padding) if not isinstance(m.padding, str) else m.padding,
        "dilation": list(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
    }


def _build_conv(d: Mapping[str, Any]) -> nn.Module:
    padding = d["padding"] if isinstance(d["padding"], str) else tuple(d["padding"])
    return nn.Conv2d(
        int(d["in_channels"]),
        int(d["out_channels"]),
        tuple(d["kernel_size"]),
        tuple(d["stride"]),
        padding,
        tuple(d["dilation"]),
        int(d["groups"]),
        bool(d["bias"]),
    )


def _describe_bn(m: nn.Module) -> dict[str, Any]:
    assert isinstance(m, nn.BatchNorm2d)
    return {
        "num_features": m.num_features,
        "eps": m.eps,
        "momentum": m.momentum,
        "affine": m.affine,
        "track_running_stats": m.track_running_stats,
    }


def _build_bn(d: Mapping[str, Any]) -> nn.Module:
    return nn.BatchNorm2d(
        int(d["num_features"]),
        float(d["eps"]),
        d["momentum"],
        bool(d["affine"]),
        bool(d["track_running_stats"]),
    )


def _describe_linear(m: nn.Module) -> dict[str, Any]:
    assert isinstance(m, nn.Linear)
    return {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}


def _build_linear(d: Mapping[str, Any]) -> nn.Module:
    return nn.Linear(int(d["in_features"]), int(d["out_features"]), bool(d["bias"]))


def _describe_sequential(m: nn.Module) -> dict[str, Any]:
    return {"children": [describe_layer(child) for child in m.children()]}


def _build_sequential(d: Mapping[str, Any]) -> nn.Module:
    return nn.Sequential(*(build_layer(child) for child in d["children"]))


#: layer type name -> how to describe and build it. Sequential containers are recorded only where
#: compression put them (a low-rank factorisation); other containers keep the base model's code.
LAYER_KINDS: Registry[LayerKind] = Registry("compressed layer kind")
LAYER_KINDS.register("Conv2d", LayerKind(nn.Conv2d, _describe_conv, _build_conv))
LAYER_KINDS.register("BatchNorm2d", LayerKind(nn.BatchNorm2d, _describe_bn, _build_bn))
LAYER_KINDS.register("Linear", LayerKind(nn.Linear, _describe_linear, _build_linear))
LAYER_KINDS.register("Sequential", LayerKind(nn.Sequential, _describe_sequential, _build_sequential))

#: modules that carry no weights and rebuild from their type alone (inside recorded Sequentials).
_PLAIN = {"Identity": nn.Identity, "ReLU": nn.ReLU, "ReLU6": nn.ReLU6}


def _kind_name(module: nn.Module) -> str | None:
    for name in LAYER_KINDS:
        if type(module) is LAYER_KINDS.get(name).cls:
            return name
    return None


def describe_layer(module: nn.Module) -> dict[str, Any]:
    """One layer as ``{"type": ..., **shape}``; raises for a layer kind slimforge cannot rebuild."""
    name = _kind_name(module)
    if name is not None:
        return {"type": name, **LAYER_KINDS.get(name).describe(module)}
    if type(module).__name__ in _PLAIN and type(module) is _PLAIN[type(module).__name__]:
        return {"type": type(module).__name__}
    raise InvalidInputError(
        f"cannot record layer type {type(module).__name__} in a compressed model config; "
        f"known types: {', '.join(LAYER_KINDS.list() + sorted(_PLAIN))}"
    )


def build_layer(spec: Mapping[str, Any]) -> nn.Module:
    """Inverse of :func:`describe_layer` (fresh weights)."""
    kind = spec.get("type")
    if kind in _PLAIN:
        return _PLAIN[kind]()
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        raise ModelFileError(f"unknown layer type {kind!r} in a compressed model config")
    return LAYER_KINDS.get(kind).build(spec)


def describe_layers(model: nn.Module, base: nn.Module) -> dict[str, dict[str, Any]]:
    """Every recordable layer of ``model`` whose type or shape differs from the same path in ``base``.

    A Sequential is recorded as a whole only where ``base`` has a different module at that path (a
    factorised layer); otherwise the walk goes inside it.
    """
    base_modules = dict(base.named_modules())
    layers: dict[str, dict[str, Any]] = {}
    skip: tuple[str, ...] = ()
    for path, module in model.named_modules():
        if not path or (skip and path.startswith(skip)):
            continue
        kind = _kind_name(module)
        original = base_modules.get(path)
        if kind is None:
            continue
        if kind == "Sequential":
            if original is not None and type(original) is nn.Sequential:
                continue  # the base's own container: look inside
            layers[path] = describe_layer(module)
            skip = (*skip, path + ".")
            continue
        spec = describe_layer(module)
        if original is None or _kind_name(original) != kind or describe_layer(original) != spec:
            layers[path] = spec
    return layers


def compressed_config(
    model: nn.Module,
    base_config: Mapping[str, Any],
    *,
    stages: list[str] | None = None,
    input_shape: list[int] | None = None,
) -> dict[str, Any]:
    """The ``model.json`` config of ``model``, a compressed form of the model ``base_config`` builds.

    Args:
        model: the compressed model.
        base_config: the config of the model compression started from (a zoo config, a space
            genome, or another compressed config, whose own base is then used).
        stages: the recipe stages applied, kept for people reading the file.
        input_shape: the input shape, batch included.
    """
    from slimforge.io import build_model

    base_config = dict(base_config)
    history: list[str] = []
    if base_config.get("builder") == BUILDER_NAME:
        history = list(base_config.get("stages", []))
        base_config = dict(base_config["base"])
    base_config.pop("format", None)
    base_config.pop("version", None)
    base_config.pop("input_shape", None)
    base = build_model(base_config)
    config: dict[str, Any] = {
        "builder": BUILDER_NAME,
        "name": str(base_config.get("name", base_config["builder"])),
        "kwargs": {},
        "base": base_config,
        "layers": describe_layers(model, base),
        "stages": history + list(stages or []),
    }
    if input_shape is not None:
        config["input_shape"] = [int(d) for d in input_shape]
    return config


def build_compressed(config: Mapping[str, Any]) -> nn.Module:
    """Builder ``compressed``: build ``config["base"]``, then put each recorded layer at its path."""
    from slimforge.io import build_model

    base_config = config.get("base")
    layers = config.get("layers")
    if not isinstance(base_config, Mapping) or not isinstance(layers, Mapping):
        raise ModelFileError("a 'compressed' model config needs a 'base' config and a 'layers' object")
    model = build_model(base_config)
    for path, spec in layers.items():
        if not isinstance(spec, Mapping):
            raise ModelFileError(f"layer {path!r} of a compressed model config is not a JSON object")
        try:
            model.get_submodule(path)
        except AttributeError:
            raise ModelFileError(f"the base model has no layer {path!r} to replace") from None
        model.set_submodule(path, build_layer(spec))
    return model


def save_compressed(
    model: nn.Module,
    config: Mapping[str, Any],
    history: Sequence[str],
    input_shape: Sequence[int],
    path: str | Path,
) -> Path:
    """Save ``model`` (compressed from the model ``config`` builds, by the stages in ``history``) to ``path``.

    With no history the model is the original and keeps its own config; otherwise the config is the
    ``compressed`` builder's (:func:`compressed_config`). Reload with :func:`slimforge.io.load_model`.
    """
    from slimforge.io import save_model

    if history:
        cfg = compressed_config(model, config, stages=list(history), input_shape=list(input_shape))
    else:
        cfg = {k: v for k, v in config.items() if k not in ("format", "version")}
        cfg["input_shape"] = list(input_shape)
    return save_model(model, cfg, path, overwrite=True)
