"""TrainRuntime: the training device, bf16 autocast and channels-last (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.data import ArrayDataset, Normalization
from slimforge.errors import InvalidInputError
from slimforge.training import TrainRuntime, TrainSettings, accuracy, resolve_train_device, train_classifier


def _data(n: int = 16) -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8), rng.integers(0, 2, n).astype(np.int64),
                        ("a", "b"), Normalization((0.5,) * 3, (0.25,) * 3))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))


def test_auto_and_cpu_resolve_here():
    assert resolve_train_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_train_device("auto").type == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "", "tpu:0"])
def test_bad_specs_name_the_value(spec):
    with pytest.raises(InvalidInputError, match="auto .*cpu, cuda or cuda:N"):
        resolve_train_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_says_the_fix():
    with pytest.raises(InvalidInputError, match=r"--train-device 'cuda:1': no CUDA GPU .* use --train-device cpu"):
        resolve_train_device("cuda:1")


def test_settings_are_checked():
    with pytest.raises(InvalidInputError, match="precision"):
        TrainRuntime(precision="fp16")
    with pytest.raises(InvalidInputError, match="compile"):
        TrainRuntime(compile="yes")  # type: ignore[arg-type]
    assert TrainRuntime.from_dict(TrainRuntime(precision="bf16").to_dict()) == TrainRuntime(precision="bf16")


@pytest.mark.parametrize("runtime", [TrainRuntime(precision="bf16"), TrainRuntime(channels_last=True)],
                         ids=["bf16", "channels_last"])
def test_opt_in_settings_train_and_leave_a_plain_float32_model(runtime):
    net, data = _net(), _data()
    result = train_classifier(net, data, TrainSettings(epochs=1, batch_size=8, augment=False), runtime=runtime)
    assert result.steps == 2 and np.isfinite(result.loss_per_epoch[0])
    for p in net.parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu" and p.is_contiguous()
    assert 0 <= accuracy(net, data, device="cpu") <= 100


def test_bf16_stays_close_to_float32():
    data = _data()
    losses = []
    for runtime in (TrainRuntime(), TrainRuntime(precision="bf16")):
        net = _net()
        r = train_classifier(net, data, TrainSettings(epochs=1, batch_size=8, lr=0.01, augment=False),
                             runtime=runtime)
        losses.append(r.loss_per_epoch[0])
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
