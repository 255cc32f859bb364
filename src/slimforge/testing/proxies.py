"""The zero-cost proxy contract as a pytest base class: a proxy is a pure function of (model, batch).

A user's own proxy is checked by one subclass supplying the ``proxy`` fixture::

    from slimforge.testing.proxies import ProxyContract

    class TestMyProxy(ProxyContract):
        @pytest.fixture
        def proxy(self):
            return MyProxy()

The contract (STYLE.md rule 4): ``score`` returns a finite float, the same one for the same seed,
and leaves the caller's model exactly as it was: parameters, buffers, gradients, ``requires_grad``
flags, dtypes and every submodule's train/eval mode.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from slimforge.estimators import Proxy, build_network
from slimforge.spaces import NB201Space

__all__ = ["ProxyContract", "model_snapshot"]

#: an NB201 cell with every operation kind (conv 3x3 and 1x1, pooling, skip).
_GENOME = (3, 2, 4, 1, 3, 1)


def model_snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything a pure function of a model must leave unchanged."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "dtypes": [p.dtype for p in model.parameters()],
    }


def _same(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return (
        before["state"].keys() == after["state"].keys()
        and all(torch.equal(before["state"][k], after["state"][k]) for k in before["state"])
        and before["modes"] == after["modes"]
        and before["requires_grad"] == after["requires_grad"]
        and before["dtypes"] == after["dtypes"]
        and all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(before["grads"], after["grads"])
        )
    )


class ProxyContract:
    """Subclass and supply a ``proxy`` fixture; override ``model``/``batch`` fixtures to test on others."""

    @pytest.fixture
    def proxy(self) -> Proxy:
        raise NotImplementedError("supply a `proxy` fixture returning your Proxy")

    @pytest.fixture
    def model(self) -> nn.Module:
        model = build_network(NB201Space(channels=4, cells_per_stage=1), _GENOME, seed=0)
        # a mixed state: eval mode with one submodule training, a frozen weight, a stale gradient
        model.eval()
        model.cells.train()
        model.stem[0].weight.requires_grad_(False)
        model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
        return model

    @pytest.fixture
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        return torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10

    def test_score_is_a_finite_float(self, proxy: Proxy, model: nn.Module, batch: Any) -> None:
        value = proxy.score(model, batch, seed=3)
        assert isinstance(value, float) and math.isfinite(value)

    def test_score_is_determined_by_the_seed(self, proxy: Proxy, model: nn.Module, batch: Any) -> None:
        assert proxy.score(model, batch, seed=3) == proxy.score(model, batch, seed=3)

    def test_score_leaves_the_model_as_it_was(self, proxy: Proxy, model: nn.Module, batch: Any) -> None:
        before = model_snapshot(model)
        proxy.score(model, batch, seed=3)
        assert _same(before, model_snapshot(model)), "the proxy changed the caller's model"
