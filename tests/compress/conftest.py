"""Fixtures the compression tests share: one thread, tiny data, tiny models, a BN re-calibration spy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slimforge.compress import EstimateConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two intra-op threads on a busy 2-core machine spin against each other (10x slower here).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def splits():
    """scikit-learn digits at 8x8: 1,293 training, 144 validation and 360 test images."""
    from slimforge.data import load_dataset

    return load_dataset("digits", image_size=8, seed=0)


@pytest.fixture(scope="session")
def resnet_config():
    """The config of a quarter-width ResNet-20 (10 classes)."""
    return {"builder": "zoo", "name": "resnet20", "kwargs": {"num_classes": 10, "width": 0.25}}


@pytest.fixture(scope="session")
def resnet(resnet_config):
    """A factory of seeded quarter-width ResNet-20s (each call a fresh copy, in eval mode)."""
    from slimforge.io import build_model

    def make() -> nn.Module:
        torch.manual_seed(0)
        return build_model(resnet_config).eval()

    return make


@pytest.fixture(scope="session")
def cheap():
    """A candidate estimate small enough for unit tests."""
    return EstimateConfig(recal_images=32, val_images=64)


class Tiny(nn.Module):
    """(a grouped conv, not prunable), conv-BN-ReLU, pool, linear: small enough to count by hand."""

    def __init__(
        self, bn: bool = True, grouped: bool = False, transposed: bool = False, width: int = 4
    ) -> None:
        super().__init__()
        self.mid = nn.Conv2d(3, 6, 3, padding=1, groups=3) if grouped else nn.Identity()
        self.conv = nn.Conv2d(6 if grouped else 3, width, 3, padding=1, bias=not bn)
        self.bn = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.up = nn.ConvTranspose2d(width, width, 1) if transposed else nn.Identity()
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(torch.relu(self.bn(self.conv(self.mid(x)))))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="session")
def tiny():
    """The :class:`Tiny` model class."""
    return Tiny


@pytest.fixture(scope="session")
def tiny_config():
    """A config that only labels results of a :class:`Tiny` model (never rebuilt)."""
    return {"builder": "zoo", "name": "resnet20"}


@pytest.fixture
def recalibrations(monkeypatch):
    """A list that gets one entry per call of ``slimforge.supernet.recalibrate_bn`` (which still runs)."""
    import slimforge.supernet as sn

    calls = []
    real = sn.recalibrate_bn

    def spy(*args, **kwargs):
        calls.append(None)
        return real(*args, **kwargs)

    monkeypatch.setattr(sn, "recalibrate_bn", spy)
    return calls
