"""The study presets of ``bench codesign`` and ``bench spaces`` resolve to the study's settings
(REFERENCE.md §1, Tables 5-1 and 5-2 and the device experiment; issue 22), down to the configs the
supernets and the standalone networks are trained with. Nothing is trained here."""

from __future__ import annotations

import pytest
import torch

from slimforge.bench import CodesignConfig, SpacesConfig
from slimforge.bench._codesign import _settings_for
from slimforge.bench._codesign import supernet_train_config as codesign_supernet
from slimforge.bench._spaces import supernet_train_config as spaces_supernet
from slimforge.bench._spaces_train import standalone_settings
from slimforge.cli import main
from slimforge.errors import UnknownNameError
from slimforge.search import make_algorithm
from slimforge.spaces import get_space
from slimforge.supernet import TRAINERS, TrainConfig, make_supernet
from slimforge.supernet._trainer import linear_schedule
from slimforge.training._trainer import _lr_at


def test_codesign_study_preset_is_tables_5_1_and_5_2() -> None:
    config = CodesignConfig.from_preset("study")
    assert (config.preset, config.epochs, config.channels, config.cells_per_stage) == ("study", 200, 16, 5)
    assert (config.pop_size, config.iterations, config.num_calibration) == (50, 20, 1000)
    assert config.eval_images is None  # every validation image
    assert (config.batch_size, config.val_fraction) == (64, 0.5)  # CIFAR-10 train split 25k / 25k
    assert config.methods == ("darts", "rsps", "gdas", "spos")
    for method in config.methods:
        train = codesign_supernet(config, method)
        assert (train.epochs, train.batch_size, train.lr_schedule) == (200, 64, "cosine")
        assert (train.lr, train.momentum, train.nesterov, train.weight_decay) == (0.025, 0.9, True, 5e-4)
        assert (train.arch_lr, train.arch_weight_decay) == (3e-4, 1e-3)
        assert train.space_kwargs == {"channels": 16, "cells_per_stage": 5} and train.hold_out_val
    darts = codesign_supernet(config, "darts")
    assert TRAINERS.get("darts").resolve_options(darts.method_options)["order"] == 2  # DARTS-v2
    assert codesign_supernet(CodesignConfig.from_preset("cpu"), "darts").method_options == {}


def test_codesign_study_nsga2_is_table_5_2() -> None:
    # The search's NSGA-II: population 50, 20 generations, mutation 0.1, parent pool 10, offspring 20/25/5.
    config = CodesignConfig.from_preset("study")
    space = get_space("nb201")
    settings = make_algorithm("nsga2", space, seed=0, **_settings_for("nsga2", config)).settings()
    assert (settings["pop_size"], settings["iterations"], settings["mutation_prob"]) == (50, 20, 0.1)
    assert (settings["n_parents"], settings["n_crossover"], settings["n_mutation"], settings["n_random"]) == (
        10,
        20,
        25,
        5,
    )


def test_spaces_study_preset_is_the_device_experiment() -> None:
    config = SpacesConfig.from_preset("study")
    assert (config.preset, config.scale) == ("study", "study")
    assert (config.supernet_epochs, config.epochs) == (900, 300)  # supernet 900, retrain 300
    assert (config.batch_size, config.lr, config.weight_decay) == (96, 0.025, 3e-4)
    for name in config.spaces:
        train = spaces_supernet(config, name)
        assert (train.method, train.epochs, train.lr_schedule) == ("spos", 900, "linear")  # SPOS's LambdaLR
        assert (train.batch_size, train.lr, train.weight_decay) == (96, 0.025, 3e-4)
        assert (train.momentum, train.nesterov) == (0.9, True)
    standalone = standalone_settings(config)
    assert (standalone.epochs, standalone.batch_size, standalone.lr) == (300, 96, 0.025)
    assert (standalone.momentum, standalone.weight_decay, standalone.lr_schedule) == (0.9, 3e-4, "linear")
    # The 20 searchable layers of SPOS's ShuffleSpace and of MobileSpace+I at width 1.0.
    assert sum(config.space_kwargs("shufflenet")["stage_depths"]) == 20
    assert sum(config.space_kwargs("mbv2-id")["stage_depths"]) == 20
    assert config.space_kwargs("mbv2-id")["width"] == 1.0


def test_small_preset_keeps_the_defaults_and_overrides_win() -> None:
    assert SpacesConfig.from_preset("small") == SpacesConfig()
    config = SpacesConfig.from_preset("study", epochs=3, supernet_epochs=None, scale="small")
    assert (config.epochs, config.supernet_epochs, config.scale) == (3, 900, "small")  # None is "not given"
    assert spaces_supernet(SpacesConfig(), "shufflenet").epochs == 20  # no supernet_epochs: epochs


def test_linear_schedule_is_spos_lambda() -> None:
    # SPOS's code: LambdaLR(lambda step: 1 - step / total_iters), stepped per batch.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.025)
    schedule = linear_schedule(optimizer, 4)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs == pytest.approx([0.025, 0.01875, 0.0125, 0.00625, 0.0])
    # The classifier trainer's schedule (retraining, zoo networks) is the same function of the step.
    assert [_lr_at(step, 4, 0, 0.025, "linear") for step in range(5)] == pytest.approx(lrs)
    space = get_space("nb201", channels=4, cells_per_stage=1)
    for name, halfway in (("linear", 0.5), ("cosine", 0.5)):
        train = TrainConfig(data="digits", epochs=1, method="spos", lr_schedule=name)
        trainer = TRAINERS.get("spos")(make_supernet(space, 4, 0), train, 4)
        assert trainer.scheduler.lr_lambdas[0](2) == pytest.approx(halfway)
        assert trainer.scheduler.lr_lambdas[0](1) == pytest.approx(
            0.75 if name == "linear" else 0.853553, abs=1e-6
        )


@pytest.mark.parametrize("kind", ["codesign", "spaces"])
def test_unknown_preset_is_one_line_exit_2(kind: str, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["bench", kind, "--preset", "paper", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown preset 'paper'" in err
    assert not out.exists()
    with pytest.raises(UnknownNameError, match="unknown preset 'paper'; use one of small, study"):
        SpacesConfig.from_preset("paper")
