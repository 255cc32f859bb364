"""What issue 16 added to supernet training and scoring: the convolution warm-up, affine-free batch
norm in the choices, batch-statistics scoring, few-shot supernets, the sandwich rule's NB201
extremes, the standalone reference, and one-line errors for a damaged checkpoint or an option out
of range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slimforge.cli import main
from slimforge.errors import InvalidInputError, ModelFileError
from slimforge.spaces.mbv2 import MBV2Space
from slimforge.spaces.nb201 import NB201Space
from slimforge.supernet import (
    TRAINERS,
    EvalData,
    TrainConfig,
    load_supernet,
    make_supernet,
    score_many,
    train_supernet,
)
from slimforge.supernet.bn import batch_norms, save_bn_stats
from slimforge.supernet.checkpoint import CHECKPOINT_FILE
from slimforge.supernet.fewshot import FewShotSupernet

TINY = {"channels": 4, "cells_per_stage": 1}
CONVS = (2, 3)  # nor_conv_1x1, nor_conv_3x3


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_npz(tiny_npz_factory) -> str:
    return tiny_npz_factory(32)


def _batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(n)]


def _trainer(method: str, total_steps: int, space=None, **changes):
    space = space or NB201Space(**TINY)
    config = TrainConfig(data="unused", epochs=1, method=method, batch_size=4, **changes)
    cls = TRAINERS.get(method)
    supernet = cls.build_supernet(space, 10, config)
    return cls(supernet, config, total_steps=total_steps)


def _record_paths(trainer) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []
    forward = trainer.supernet._forward

    def spy(x, genome):
        seen.append(tuple(genome))
        return forward(x, genome)

    trainer.supernet._forward = spy
    return seen


# --- weighted choices and the warm-up ---------------------------------------------------------------


def test_weighted_choices_leave_out_parameter_free_choices() -> None:
    assert make_supernet(NB201Space(**TINY), 10, 0).weighted_choices() == [CONVS] * 6
    space = MBV2Space(width=0.25, resolution=32, stage_depths=(1, 2, 1, 1, 1, 1))
    choices = make_supernet(space, 10, 0).weighted_choices()
    assert len(choices) == len(space.num_choices)
    assert all(space.identity_choice not in c and len(c) == len(space.block_tokens) for c in choices)


@pytest.mark.slow
def test_warmup_trains_only_convolution_paths_then_samples_uniformly() -> None:
    trainer = _trainer("spos", total_steps=4, method_options={"warmup": 0.5})
    seen = _record_paths(trainer)
    for batch in _batches(4):
        trainer.step(batch)
    assert all(op in CONVS for genome in seen[:2] for op in genome)
    assert any(op not in CONVS for genome in seen[2:] for op in genome)


def test_drop_path_drops_edges_to_none_and_layers_to_the_identity() -> None:
    assert make_supernet(NB201Space(**TINY), 10, 0).drop_choices() == [0] * 6
    space = MBV2Space(width=0.25, resolution=32, stage_depths=(1, 2, 1, 1, 1, 1))
    dropped = make_supernet(space, 10, 0).drop_choices()
    assert [d is not None for d in dropped] == [n > space.identity_choice for n in space.num_choices]
    trainer = _trainer("spos", total_steps=3, method_options={"drop_path": 0.9})
    seen = _record_paths(trainer)
    for batch in _batches(3):
        trainer.step(batch)
    assert sum(op == 0 for genome in seen for op in genome) >= 12  # about 0.92 of 18 edges


def test_drop_path_also_drops_on_a_few_shot_supernet() -> None:
    # The few-shot supernet wraps sub-supernets; it must drop what they drop (it once dropped nothing).
    trainer = _trainer("fewshot", total_steps=3, method_options={"drop_path": 0.9, "warmup": 0.0})
    assert trainer.supernet.drop_choices() == [0] * 6
    seen = _record_paths(trainer)
    for batch in _batches(3):
        trainer.step(batch)
    assert sum(op == 0 for genome in seen for op in genome) >= 12


# --- batch norm -------------------------------------------------------------------------------------


def test_affine_free_choices_keep_scale_one_and_shift_zero_while_the_rest_learns() -> None:
    trainer = _trainer("spos", total_steps=3, bn_affine=False)
    supernet = trainer.supernet
    stem_before = supernet.stem[1].weight.detach().clone()
    for batch in _batches(3):
        trainer.step(batch)
    choice_bns = supernet.choice_batch_norms()
    assert choice_bns and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in choice_bns)
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in choice_bns)
    assert not torch.equal(supernet.stem[1].weight, stem_before)
    assert all(p.requires_grad for p in trainer.weight_parameters())


def test_batch_statistics_scoring_matches_the_extracted_network_in_train_mode_bn() -> None:
    supernet = make_supernet(NB201Space(**TINY), 4, seed=0).eval()
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(6, 3, 16, 16, generator=g), torch.arange(6) % 4
    data = EvalData(torch.empty(0, 3, 16, 16), images, labels, batch_size=3, bn="batch")
    before = save_bn_stats(supernet)
    genome = (3, 1, 2, 0, 4, 3)
    (score,) = score_many(supernet, [genome], data)
    net = supernet.extract(genome).eval()
    for m in batch_norms(net):
        m.train()
    with torch.no_grad():
        logits = torch.cat([net(x) for x in images.split(3)])
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert score.loss == pytest.approx(expected, rel=1e-5)
    assert score.accuracy == int((logits.argmax(1) == labels).sum()) / 6
    after = save_bn_stats(supernet)
    assert all(torch.equal(a, b) for pair in zip(before, after) for a, b in zip(*pair))
    assert not supernet.training
    assert data.images_per_architecture == 6


def test_bad_bn_modes_raise() -> None:
    with pytest.raises(InvalidInputError, match="'running'"):
        EvalData(torch.empty(0, 3, 8, 8), torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long), bn="running")
    with pytest.raises(InvalidInputError, match="eval_bn"):
        TrainConfig(data="digits", epochs=1, eval_bn="running")
    with pytest.raises(InvalidInputError, match="bn_affine"):
        TrainConfig(data="digits", epochs=1, bn_affine="no")


# --- few-shot ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fewshot_shares_one_supernet_until_the_split_then_routes_by_the_split_gene() -> None:
    trainer = _trainer("fewshot", total_steps=4, method_options={"gene": 3, "split": 0.5})
    supernet = trainer.supernet
    assert isinstance(supernet, FewShotSupernet) and len(supernet.parts) == 5
    assert supernet.part((0, 0, 0, 4, 0, 0)) is supernet.parts[0]
    for batch in _batches(2):
        trainer.step(batch)
    assert not bool(supernet.is_split)
    first = {k: v.clone() for k, v in supernet.parts[0].state_dict().items()}
    trainer.step(_batches(1, seed=5)[0])  # splits, then trains one sub-supernet
    assert bool(supernet.is_split)
    assert supernet.part((0, 0, 0, 4, 0, 0)) is supernet.parts[4]
    unchanged = [all(torch.equal(v, first[k]) for k, v in p.state_dict().items()) for p in supernet.parts]
    assert unchanged.count(False) == 1  # every copy got the split weights, one has trained since
    momentum = trainer.optimizer.state[next(supernet.parts[1].parameters())]
    assert "momentum_buffer" in momentum


@pytest.mark.slow
def test_fewshot_splits_nb201_on_the_input_to_output_edge_and_layerwise_on_the_first_layer() -> None:
    assert _trainer("fewshot", total_steps=1).supernet.gene == 3
    space = MBV2Space(width=0.25, resolution=32, stage_depths=(1, 1, 1, 1, 1, 1))
    supernet = _trainer("fewshot", total_steps=1, space=space).supernet
    assert supernet.gene == 0 and len(supernet.parts) == space.num_choices[0]


def test_fewshot_options_out_of_range_raise() -> None:
    for options, fragment in (
        ({"gene": 6}, "gene 6 does not exist"),
        ({"gene": -1}, "gene must be"),
        ({"split": 1.0}, "split must be a number in"),
        ({"warmup": -0.1}, "warmup must be a number in"),
        ({"drop_path": 1.0}, "drop_path must be a number in"),
    ):
        with pytest.raises(InvalidInputError, match=fragment):
            _trainer("fewshot", total_steps=2, method_options=options)
    with pytest.raises(InvalidInputError, match="warmup"):
        _trainer("spos", total_steps=2, method_options={"warmup": 1})


@pytest.mark.slow
def test_fewshot_checkpoint_loads_and_resumes_to_the_uninterrupted_weights(tiny_npz: str, tmp_path: Path) -> None:
    config = TrainConfig(
        data=tiny_npz, epochs=2, space_kwargs=TINY, method="fewshot", method_options={"gene": 0},
        batch_size=8, bn_affine=False,
    )
    train_supernet(config, tmp_path / "whole")
    train_supernet(config, tmp_path / "parts", stop_after_steps=3)
    train_supernet(config, tmp_path / "parts", resume=True)
    whole = torch.load(tmp_path / "whole" / CHECKPOINT_FILE, weights_only=True)["model"]
    parts = torch.load(tmp_path / "parts" / CHECKPOINT_FILE, weights_only=True)["model"]
    assert whole.keys() == parts.keys() and all(torch.equal(whole[k], parts[k]) for k in whole)
    supernet, loaded, _ = load_supernet(tmp_path / "whole")
    assert isinstance(supernet, FewShotSupernet) and bool(supernet.is_split) and loaded == config


# --- sandwich on NB201 ------------------------------------------------------------------------------


def test_sandwich_on_nb201_uses_the_all_convolution_and_all_skip_cells() -> None:
    trainer = _trainer("sandwich", total_steps=1, method_options={"num_random": 0})
    seen = _record_paths(trainer)
    trainer.step(_batches(1)[0])
    assert seen == [(3,) * 6, (1,) * 6]


# --- damaged checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", [[1, 2], {"stem.0.weight": "text"}, torch.zeros(3)])
def test_a_checkpoint_whose_model_is_not_a_state_dict_is_one_line_exit_2(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture, model
) -> None:
    config = TrainConfig(data=tiny_npz, epochs=2, space_kwargs=TINY, batch_size=8)
    train_supernet(config, tmp_path, stop_after_steps=1)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    torch.save({**state, "model": model}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(ModelFileError, match="not a state dict"):
        load_supernet(tmp_path)
    with pytest.raises(ModelFileError, match="not a state dict"):
        train_supernet(config, tmp_path, resume=True)
    argv = ["supernet", "train", "--space-arg", "channels=4", "--space-arg", "cells_per_stage=1", "--data", tiny_npz,
            "--epochs", "2", "--batch-size", "8", "--out", str(tmp_path), "--resume"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "not a state dict" in err and "\n" not in err


def test_new_options_out_of_range_are_one_line_exit_2(tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["supernet", "train", "--data", tiny_npz, "--epochs", "1", "--out", str(tmp_path / "x")]
    for extra, fragment in (
        (["--set", "warmup=1.5"], "warmup"),
        (["--method", "fewshot", "--set", "gene=9"], "gene 9"),
        (["--method", "fewshot", "--set", "split=-1"], "split"),
        (["--weight-decay", "-1"], "weight_decay"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err


# --- the standalone reference ---------------------------------------------------------------------


def _table_csv(tmp_path: Path) -> Path:
    rows = [
        (1, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", 93.7),
        (2, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|", 85.9),
        (3, "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|", 86.6),
        (4, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 10.0),
    ]
    path = tmp_path / "table.csv"
    path.write_text("index,arch,accuracy\n" + "".join(f"{i},{a},{acc}\n" for i, a, acc in rows))
    return path


@pytest.mark.slow
def test_standalone_reference_is_cached_resumable_and_ranks_a_supernet(
    tiny_npz: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slimforge.supernet import build_reference, load_reference, rank_supernet
    from slimforge.supernet import reference as reference_module

    config = TrainConfig(data=tiny_npz, epochs=1, space_kwargs=TINY, batch_size=8)
    table = _table_csv(tmp_path)
    ref = build_reference(tmp_path / "ref", config, sample=3, seed=0, table=table)
    assert ref.num_architectures == 3 and ref.true_accuracy_pct is not None
    assert all(0 <= a <= 100 for a in ref.accuracy_pct) and ref.images_trained == 3 * 32
    assert np.isfinite(ref.kendall_tau) or len(set(ref.accuracy_pct)) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("a cached architecture was trained again")

    monkeypatch.setattr(reference_module, "train_standalone", no_training)
    again = build_reference(tmp_path / "ref", config, sample=3, seed=0, table=table)
    assert again == ref and load_reference(tmp_path / "ref") == ref
    with pytest.raises(InvalidInputError, match="other settings"):
        build_reference(tmp_path / "ref", TrainConfig(data=tiny_npz, epochs=2, space_kwargs=TINY), sample=3, table=table)
    monkeypatch.undo()

    train_supernet(config, tmp_path / "supernet")
    against_ref = rank_supernet(tmp_path / "supernet", reference=tmp_path / "ref", recal_images=8)
    assert against_ref.truth == "standalone" and against_ref.true_accuracy_pct == ref.accuracy_pct
    against_table = rank_supernet(tmp_path / "supernet", table, reference=tmp_path / "ref", bn="batch")
    assert against_table.truth == "table" and against_table.true_accuracy_pct == ref.true_accuracy_pct
    assert against_table.bn == "batch" and against_table.num_recal_images == 0
    assert against_table.supernet_accuracy_pct != () and len(against_table.indices) == 3


def test_bad_reference_inputs_raise(tiny_npz: str, tmp_path: Path) -> None:
    from slimforge.supernet import build_reference, load_reference

    config = TrainConfig(data=tiny_npz, epochs=1, space_kwargs=TINY, batch_size=8)
    with pytest.raises(InvalidInputError, match="at least 3"):
        build_reference(tmp_path, config, sample=2)
    with pytest.raises(InvalidInputError, match="exceeds the 4 rows"):
        build_reference(tmp_path, config, sample=5, table=_table_csv(tmp_path))
    with pytest.raises(ModelFileError, match="supernet standalone"):
        load_reference(tmp_path / "nothing")
    (tmp_path / "reference.json").write_text("[]")
    with pytest.raises(ModelFileError, match="not a slimforge standalone reference"):
        load_reference(tmp_path)


# --- the per-architecture fine-tune ----------------------------------------------------------------


@pytest.mark.slow
def test_finetuned_score_is_the_extracted_network_after_those_steps_and_leaves_the_supernet_alone() -> None:
    supernet = make_supernet(NB201Space(**TINY), 4, seed=0).eval()
    g = torch.Generator().manual_seed(3)
    batches = tuple((torch.randn(4, 3, 16, 16, generator=g), torch.arange(4) % 4) for _ in range(2))
    images, labels = torch.randn(6, 3, 16, 16, generator=g), torch.arange(6) % 4
    recal = torch.randn(8, 3, 16, 16, generator=g)
    data = EvalData(recal, images, labels, batch_size=3, recal_batch_size=4, finetune_batches=batches, finetune_lr=0.05)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    genome = (3, 1, 2, 0, 4, 3)
    (score,) = score_many(supernet, [genome], data)
    assert all(torch.equal(v, before[k]) for k, v in supernet.state_dict().items())
    net = supernet.extract(genome).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(net.parameters()), 5.0)
        optimizer.step()
    from slimforge.supernet import recalibrate_bn

    recalibrate_bn(net, recal, batch_size=4)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net.eval()(images), labels).item()
    assert score.loss == pytest.approx(expected, rel=1e-4)
    (inherited,) = score_many(supernet, [genome], EvalData(recal, images, labels, batch_size=3, recal_batch_size=4))
    assert inherited.loss != pytest.approx(score.loss)
    assert data.images_per_architecture == 8 + 8 + 6
    with pytest.raises(InvalidInputError, match="finetune_lr"):
        EvalData(recal, images, labels, finetune_lr=0.0)


# --- one scoring for rank, search and run -----------------------------------------------------------


@pytest.mark.slow
def test_scorer_follows_the_runs_bn_mode_and_the_search_evaluator_scores_alike(tiny_npz: str, tmp_path: Path) -> None:
    from slimforge.search import make_evaluator
    from slimforge.supernet import SupernetScorer

    config = TrainConfig(data=tiny_npz, epochs=1, space_kwargs=TINY, batch_size=8, eval_bn="batch")
    train_supernet(config, tmp_path)
    genomes = [(3, 3, 3, 1, 3, 3), (1, 4, 0, 2, 2, 1)]
    scorer = SupernetScorer(tmp_path, batch_size=4, finetune_steps=0)
    assert scorer.bn == "batch" and len(scorer.data.recal_images) == 0
    scores = scorer.score(genomes)
    supernet, _, _ = load_supernet(tmp_path)
    by_hand = score_many(supernet, genomes, EvalData(scorer.data.recal_images, scorer.data.images,
                                                     scorer.data.labels, batch_size=4, bn="batch"))
    assert scores == by_hand
    recal = SupernetScorer(tmp_path, bn="recalibrate", recal_images=16, batch_size=4)
    assert recal.bn == "recalibrate" and len(recal.data.recal_images) == 16
    evaluator = make_evaluator(
        "supernet_accuracy", NB201Space(**TINY), checkpoint=tmp_path, batch_size=4, finetune_steps=0
    )
    values = evaluator.evaluate_many(genomes)
    assert [v["accuracy"] for v in values] == [100.0 * s.accuracy for s in scores]
    assert [v["loss"] for v in values] == [s.loss for s in scores]
    with pytest.raises(InvalidInputError, match="bn 'mean'"):
        SupernetScorer(tmp_path, bn="mean")


@pytest.mark.slow
def test_cli_standalone_builds_a_reference_without_a_table_and_rank_uses_it(
    tiny_npz: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import json

    recipe = ["--space-arg", "channels=4", "--space-arg", "cells_per_stage=1", "--data", tiny_npz,
              "--epochs", "1", "--batch-size", "8"]
    assert main(["supernet", "standalone", *recipe, "--sample", "3", "--out", str(tmp_path / "ref"), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert len(ref["architectures"]) == 3 and ref["kendall_tau"] is None and ref["table"] is None
    space = NB201Space(**TINY)
    assert all(space.canonical(space.from_string(a)) == space.from_string(a) for a in ref["architectures"])
    assert main(["supernet", "train", *recipe, "--out", str(tmp_path / "sn")]) == 0
    capsys.readouterr()
    argv = ["supernet", "rank", "--checkpoint", str(tmp_path / "sn"), "--reference", str(tmp_path / "ref"), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["truth"] == "standalone" and result["true_accuracy_pct"] == ref["accuracy_pct"]
    assert main(["supernet", "rank", "--checkpoint", str(tmp_path / "sn")]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(["supernet", "standalone", *recipe, "--sample", "2", "--out", str(tmp_path / "r2")]) == 2
    assert "at least 3" in capsys.readouterr().err
