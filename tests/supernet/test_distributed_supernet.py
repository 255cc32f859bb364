"""Data-parallel training (issue 22): 2 gloo processes on CPU end with the weights of one process on
the same global batch (supernets and retraining), a supernet run resumes on another number of
processes, and a batch that does not divide over the processes is refused before anything is written."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from slimforge.cli import main
from slimforge.data import ArrayDataset, load_dataset, make_loader
from slimforge.supernet import TrainConfig, train_supernet
from slimforge.supernet.checkpoint import CHECKPOINT_FILE
from slimforge.training import TrainSettings, train_classifier
from slimforge.training.distributed import distributed_from_env

TINY_SPACE = {"channels": 4, "cells_per_stage": 1}
STEPS = 3  # per process group run; the data give 4 steps an epoch


@pytest.fixture(scope="module")
def tiny_npz(tiny_npz_factory) -> str:
    return tiny_npz_factory(40)


def _config(data: str, method: str, epochs: int = 2, **options) -> TrainConfig:
    # 40 images, val 0.2: 32 training images, 4 global batches of 8 an epoch (DARTS: 8 held out).
    return TrainConfig(
        data=data,
        epochs=epochs,
        space_kwargs=TINY_SPACE,
        method=method,
        method_options=options,
        batch_size=8,
        val_fraction=0.2,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _become_rank(rank: int, world: int, port: int) -> None:
    """A torchrun process in miniature: the environment torchrun sets, one intra-op thread."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)


def _rank_main(rank: int, world: int, port: int, config: TrainConfig, out: str, steps: int) -> None:
    _become_rank(rank, world, port)
    result = train_supernet(config, out, stop_after_steps=steps)
    assert result.world_size == world and result.steps == steps


def _run_ranks(world: int, config: TrainConfig, out: Path, steps: int) -> None:
    mp.spawn(_rank_main, args=(world, _free_port(), config, str(out), steps), nprocs=world, join=True)


def _state(out: Path) -> dict:
    return torch.load(out / CHECKPOINT_FILE, weights_only=True)


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a["trainer"]["step_count"] == b["trainer"]["step_count"]
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=1e-4, atol=1e-5, msg=key)
    assert torch.equal(a["trainer"]["generator"], b["trainer"]["generator"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spos", "darts"])
def test_two_gloo_processes_train_the_weights_of_one(tiny_npz: str, tmp_path: Path, method: str) -> None:
    # DARTS second order: architecture steps through a virtual weight step and finite differences.
    config = _config(tiny_npz, method, **({"order": 2} if method == "darts" else {}))
    _run_ranks(2, config, tmp_path / "two", STEPS)
    torch.set_num_threads(1)
    one = train_supernet(config, tmp_path / "one", stop_after_steps=STEPS)
    assert one.world_size == 1
    two, single = _state(tmp_path / "two"), _state(tmp_path / "one")
    _assert_same_weights(two, single)
    if method == "darts":  # the architecture parameters too
        torch.testing.assert_close(two["trainer"]["alpha"], single["trainer"]["alpha"], rtol=1e-4, atol=1e-6)
        return
    # The 2-process checkpoint resumes on one process and ends where one process ends.
    resumed = train_supernet(config, tmp_path / "two", resume=True)
    assert resumed.resumed_from_step == STEPS and resumed.finished and resumed.world_size == 1
    train_supernet(config, tmp_path / "one", resume=True)
    _assert_same_weights(_state(tmp_path / "two"), _state(tmp_path / "one"))


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 4),
    )


RETRAIN = TrainSettings(epochs=2, batch_size=8, lr=0.05, seed=0)


def _retrain_rank(rank: int, world: int, port: int, data: str, out: str) -> None:
    _become_rank(rank, world, port)
    split = load_dataset(data, val_fraction=0.2, seed=0).train
    model = _tiny_net()
    with distributed_from_env(torch.device("cpu")) as ctx:
        result = train_classifier(model, split, RETRAIN, dist=ctx)
    if rank == 0:
        torch.save({"model": model.state_dict(), "loss": torch.tensor(result.loss_per_epoch)}, out)


@pytest.mark.slow
def test_two_gloo_processes_retrain_the_weights_of_one(tiny_npz: str, tmp_path: Path) -> None:
    out = tmp_path / "two.pt"
    mp.spawn(_retrain_rank, args=(2, _free_port(), tiny_npz, str(out)), nprocs=2, join=True)
    torch.set_num_threads(1)
    model = _tiny_net()
    result = train_classifier(model, load_dataset(tiny_npz, val_fraction=0.2, seed=0).train, RETRAIN)
    two = torch.load(out, weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    torch.testing.assert_close(two["loss"], torch.tensor(result.loss_per_epoch), rtol=1e-4, atol=1e-5)


def test_sharded_loader_slices_the_global_batches() -> None:
    rng = np.random.default_rng(1)
    split = ArrayDataset(
        images=rng.integers(0, 256, (12, 3, 8, 8), dtype=np.uint8),
        labels=np.arange(12, dtype=np.int64) % 3,
        class_names=("a", "b", "c"),
        augment_default=True,
    )
    whole = list(make_loader(split, 6, train=True, seed=3, normalize=False).epoch(1))
    shards = [
        list(make_loader(split, 6, train=True, seed=3, normalize=False, shard=(i, 2)).epoch(1))
        for i in (0, 1)
    ]
    assert len(whole) == len(shards[0]) == len(shards[1]) == 2
    for b, (images, labels) in enumerate(whole):
        assert torch.equal(torch.cat([shards[0][b][0], shards[1][b][0]]), images)  # same crops and flips
        assert torch.equal(torch.cat([shards[0][b][1], shards[1][b][1]]), labels)


def test_batch_not_dividing_over_the_processes_is_one_line_exit_2(
    tiny_npz: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "run"
    argv = ["supernet", "train", "--data", tiny_npz, "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "batch size 8 does not divide over 3 processes" in err
    assert not out.exists()
