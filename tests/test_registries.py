"""Every registry of slimforge passes the registry contract (slimforge.testing.registries)."""

from __future__ import annotations

import importlib

import pytest

from slimforge.testing.registries import RegistryContract

#: every Registry in the package, as "module:NAME" (a new registry is added here the day it is made).
REGISTRIES = [
    "slimforge.nn.layers:ACTIVATIONS",
    "slimforge.zoo:MODELS",
    "slimforge.data._registry:LOADERS",
    "slimforge.io:BUILDERS",
    "slimforge.io:INPUT_SHAPES",
    "slimforge.spaces:SPACES",
    "slimforge.supernet:TRAINERS",
    "slimforge.hardware:DEVICES",
    "slimforge.hardware:RUNTIMES",
    "slimforge.hardware:COST_MODELS",
    "slimforge.hardware:PREDICTORS",
    "slimforge.hardware.export._export:EXPORTERS",
    "slimforge.estimators:PROXIES",
    "slimforge.estimators:PREDICTORS",
    "slimforge.search:EVALUATORS",
    "slimforge.search:ACCURACY_SOURCES",
    "slimforge.search:DEVICE_SOURCES",
    "slimforge.search:ALGORITHMS",
    "slimforge.search.executors:EXECUTORS",
    "slimforge.compress.quantize:BIT_QUANTIZERS",
    "slimforge.compress._rebuild:LAYER_KINDS",
    "slimforge.compress.recipe:QUANTIZE_MODES",
    "slimforge.compress.recipe:STAGES",
    "slimforge.compress.prune:IMPORTANCES",
    "slimforge.compress.lowrank:LOWRANK_METHODS",
    "slimforge.compress.auto:BUDGET_KEYS",
    "slimforge.compress.auto:ESTIMATES",
    "slimforge.runs:RUN_STAGES",
    "slimforge.bench:REPRESENTATIVES",
    "slimforge.bench:BENCH_SPACES",
]


def _load(ref: str):
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class TestRegistries(RegistryContract):
    @pytest.fixture(params=REGISTRIES)
    def registry(self, request):
        return _load(request.param)


def test_the_list_names_every_registry_in_the_package():
    import pathlib
    import re

    root = pathlib.Path(importlib.import_module("slimforge").__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        if "testing" in path.parts:
            continue
        for name in re.findall(r"^([A-Z_]+)(?:: Registry\[[^\]]*\])? = Registry\(", path.read_text(), re.M):
            found.add(name)
    listed = {ref.partition(":")[2] for ref in REGISTRIES}
    assert found <= listed, f"registries missing from REGISTRIES: {sorted(found - listed)}"
