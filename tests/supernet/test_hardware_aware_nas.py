"""Hardware-aware differentiable NAS (FBNet, ProxylessNAS; issue 21 item 4): the expected-latency term
is the lookup table's sum at a one-hot alpha and differentiable; hard mode keeps the derived
architecture within the limit; the relaxed layer-wise forward is the single path at a one-hot gate;
bad input is one line (exit 2 at the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slimforge.errors import InvalidInputError
from slimforge.hardware import read_lut
from slimforge.spaces import get_space
from slimforge.supernet import TRAINERS, ArchCosts, TrainConfig, load_arch_costs, make_supernet
from slimforge.supernet.evaluate import EvalData, evaluate_many

METHODS = ("fbnet", "proxyless")
TINY = {"width": 0.35, "resolution": 32, "stage_depths": [1, 2, 1, 1, 1, 1]}
NB201_TABLE = Path("../shared/data/nb201/device_pi5_onnxruntime.csv")


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_lut(path: Path, space_kwargs: dict, seed: int = 0) -> Path:
    """A lookup table of the tiny mbv2 space with seeded figures (bigger blocks cost more)."""
    space = get_space("mbv2", **space_kwargs)
    rng = np.random.default_rng(seed)
    header = {
        "format": "slimforge.lut/1",
        "space": "mbv2",
        "space_options": json.dumps(space_kwargs, sort_keys=True),
        "space_repr": repr(space),
        "device": "local-cpu",
        "runtime": "onnxruntime",
        "threads": "1",
        "input_shape": "1x3x32x32",
        "num_classes": "10",
    }
    lines = [f"# {k}: {v}" for k, v in header.items()]
    lines.append(
        "part,layer,choice,token,input_shape,latency_ms,latency_ms_iqr,latency_ms_min,num_runs,stable"
    )
    lines += ["call,,,call,1x3x32x32,0.005,0,0.005,100,true", "stem,,,stem,1x3x32x32,0.2,0,0.2,100,true"]
    lines.append("tail,,,tail,1x8x4x4,0.1,0,0.1,100,true")
    for i, n in enumerate(space.num_choices):
        for c in range(n):
            if c == space.identity_choice:
                lines.append(f"layer,{i},{c},id,1x8x32x32,0,0,0,0,true")
            else:
                ms = 0.05 * (1 + c) + rng.uniform(0, 0.05)
                lines.append(f"layer,{i},{c},{space.block_tokens[c]},1x8x32x32,{ms},0,{ms},100,true")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(method: str, space: str = "mbv2", space_kwargs: dict | None = None, **options) -> TrainConfig:
    return TrainConfig(
        data="unused",
        epochs=1,
        space=space,
        space_kwargs=TINY if space_kwargs is None else space_kwargs,
        method=method,
        method_options=options,
        batch_size=4,
        arch_lr=0.05,
    )


def _trainer(config: TrainConfig, total_steps: int = 4):
    space = get_space(config.space, **config.space_kwargs)
    cls = TRAINERS.get(config.method)
    return cls(cls.build_supernet(space, 10, config), config, total_steps=total_steps)


def _batches(seed: int, n: int):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(n)
    ]


def test_an_affine_calibrated_lut_charges_its_offset_once_per_network(tmp_path: Path) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    text = path.read_text().replace(
        "# num_classes: 10\n",
        "# num_classes: 10\n# calibration_form: affine\n# calibration_scale_median: 1.1\n"
        "# calibration_offset_ms_median: 0.02\n",
    )
    path.write_text(text)
    space = get_space("mbv2", **TINY)
    costs, lut = load_arch_costs(f"lut:{path}", space), read_lut(path)
    assert lut.offset_ms() == 0.02
    for genome in [space.sample(np.random.default_rng(s)) for s in range(3)] + [costs.cheapest()[0]]:
        assert costs.of(genome) == pytest.approx(lut.predict(genome), rel=1e-9)


def test_expected_latency_is_the_lut_sum_at_a_one_hot_alpha_and_differentiable(tmp_path: Path) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    space = get_space("mbv2", **TINY)
    costs = load_arch_costs(f"lut:{path}", space)
    lut = read_lut(path)
    rng = np.random.default_rng(0)
    width = max(space.num_choices)
    for genome in [space.sample(rng) for _ in range(5)] + [costs.cheapest()[0]]:
        onehot = torch.zeros(len(genome), width, dtype=torch.float64)
        onehot[torch.arange(len(genome)), torch.tensor(genome)] = 1.0
        assert float(costs.expected(onehot)) == pytest.approx(lut.predict(genome), rel=1e-9)
        assert costs.of(genome) == pytest.approx(lut.predict(genome), rel=1e-9)

    alpha = torch.randn(len(space.num_choices), width, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[c < n for c in range(width)] for n in space.num_choices])
    probs = torch.softmax(alpha.masked_fill(~mask, -1e9), dim=1)
    costs.expected(probs).backward()
    table = costs.padded(dtype=torch.float64)
    mean = (probs * table).sum(dim=1, keepdim=True)
    # d/dalpha_ic of sum_c p_ic t_ic = p_ic (t_ic - E_i[t]); 0 on the choices a gene lacks.
    assert torch.allclose(alpha.grad, (probs * (table - mean)).detach(), atol=1e-12)
    assert alpha.grad.abs().sum() > 0


@pytest.mark.parametrize(("method", "constraint"), [(m, c) for m in METHODS for c in ("project", "dual")])
def test_hard_mode_keeps_the_derived_architecture_within_the_limit(
    tmp_path: Path, method: str, constraint: str
) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    space = get_space("mbv2", **TINY)
    costs = load_arch_costs(f"lut:{path}", space)
    cheapest = costs.cheapest()[1]
    dearest = costs.of(tuple(int(np.argmax(row)) for row in costs.table))
    limit = cheapest + 0.2 * (dearest - cheapest)
    options = {"latency": f"lut:{path}", "limit_ms": limit, "mode": "hard", "constraint": constraint}
    trainer = _trainer(_config(method, **options))
    with torch.no_grad():  # start the unconstrained argmax at the dearest network
        trainer.alpha.copy_(costs.padded() * 10)
    assert costs.of(trainer.supernet.space.validate(tuple(trainer.alpha.argmax(dim=1).tolist()))) > limit
    for batch, val in zip(_batches(0, 3), _batches(1, 3)):
        assert np.isfinite(trainer.step(batch, val))
        if constraint == "project":  # every step's distribution meets the limit
            assert float(trainer.expected_cost().detach()) <= limit * (1 + 1e-6)
    if constraint == "dual":  # the expected latency was over the limit, so the multiplier rose
        assert trainer.dual > 0
    derived = trainer.derive()
    assert read_lut(path).predict(derived) <= limit + 1e-9


def _flat_hard_trainer(tmp_path: Path, method: str, fraction: float, **options):
    """A trainer with flat alpha projected under a binding limit ``fraction`` of the way from the
    cheapest to the dearest network: the state 4 CPU epochs leave (BENCHMARKS issue 21)."""
    path = _write_lut(tmp_path / "lut.csv", TINY)
    costs = load_arch_costs(f"lut:{path}", get_space("mbv2", **TINY))
    cheapest = costs.cheapest()[1]
    dearest = costs.of(tuple(int(np.argmax(row)) for row in costs.table))
    limit = cheapest + fraction * (dearest - cheapest)
    trainer = _trainer(_config(method, latency=f"lut:{path}", limit_ms=limit, mode="hard", **options))
    trainer._project_to_limit()
    return trainer, costs, limit


def _eval_data(seed: int = 5) -> EvalData:
    g = torch.Generator().manual_seed(seed)
    return EvalData(
        recal_images=torch.randn(8, 3, 16, 16, generator=g),
        images=torch.randn(16, 3, 16, 16, generator=g),
        labels=torch.randint(0, 10, (16,), generator=g),
        batch_size=8,
        recal_batch_size=8,
    )


@pytest.mark.parametrize("method", METHODS)
def test_scored_derivation_spends_the_limit_and_picks_the_best_scoring_feasible_genome(
    tmp_path: Path, method: str
) -> None:
    trainer, costs, limit = _flat_hard_trainer(tmp_path, method, 0.5, derive_samples=12)
    data = _eval_data()
    probable = trainer.derive()  # no data: the most probable genome within the limit
    assert probable == costs.cheapest()[0] or costs.of(probable) <= costs.cheapest()[1] + 0.06
    samples = trainer._feasible_samples(torch.log_softmax(trainer.logits(), dim=1).detach().double().numpy())
    assert len(samples) == 12 and all(costs.of(g) <= limit + 1e-9 for g in samples)
    # the flat, tilted distribution still draws networks that use the budget the argmax leaves
    assert max(costs.of(g) for g in samples) > costs.of(probable) + 0.1 * (limit - costs.of(probable))
    scored = trainer.derive(data)
    assert costs.of(scored) <= limit + 1e-9
    candidates = list(dict.fromkeys([probable, *samples]))
    accuracy = evaluate_many(trainer.supernet, candidates, data)
    assert scored in candidates
    assert evaluate_many(trainer.supernet, [scored], data)[0] == max(accuracy)
    assert trainer.derive(data) == scored  # repeatable: seeded by the run's seed
    # derive=probable keeps the most probable feasible genome even when data is given
    other, _, _ = _flat_hard_trainer(tmp_path, method, 0.5, derive="probable")
    assert other.derive(data) == probable


def test_a_sample_over_the_limit_keeps_most_of_its_choices() -> None:
    costs = ArchCosts("test", "ms", 0.0, tuple((0.0, 1.0, 2.0) for _ in range(6)))
    scores = np.zeros((6, 3))
    keep = scores.copy()
    sample = [2, 2, 2, 0, 0, 0]  # cost 6
    keep[np.arange(6), sample] += 1e3
    moved = costs.project(keep, 5.0)
    assert costs.of(moved) <= 5.0
    assert sum(a == b for a, b in zip(moved, sample)) == 5  # one gene steps down, the rest are kept


def test_projection_returns_the_argmax_when_it_fits_and_a_feasible_genome_otherwise() -> None:
    rng = np.random.default_rng(0)
    costs = ArchCosts("test", "ms", 1.0, tuple(tuple(rng.uniform(0, 1, 4)) for _ in range(5)))
    scores = rng.normal(size=(5, 4))
    argmax = tuple(int(v) for v in scores.argmax(axis=1))
    assert costs.project(scores, costs.of(argmax)) == argmax
    cheapest = costs.cheapest()[1]
    for limit in np.linspace(cheapest, costs.of(argmax), 7):
        genome = costs.project(scores, float(limit))
        assert costs.of(genome) <= limit + 1e-9


def test_gated_forward_at_a_one_hot_gate_is_the_single_path() -> None:
    space = get_space("mbv2", **TINY)
    supernet = make_supernet(space, 10, seed=0).eval()
    genome = space.sample(np.random.default_rng(3))
    gates = torch.zeros(len(genome), max(space.num_choices))
    gates[torch.arange(len(genome)), torch.tensor(genome)] = 1.0
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(supernet.forward_gated(x, gates, [[c] for c in genome]), supernet(x, genome))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_a_resumed_trainer_continues_exactly(tmp_path: Path, method: str) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    config = _config(method, latency=f"lut:{path}", limit_ms=0.9, mode="hard", constraint="dual")
    batches, vals = _batches(0, 3), _batches(1, 3)
    whole = _trainer(config)
    for b, v in zip(batches, vals):
        whole.step(b, v)
    first = _trainer(config)
    first.step(batches[0], vals[0])
    second = _trainer(config)
    second.supernet.load_state_dict(first.supernet.state_dict())
    second.load_state_dict(first.state_dict())
    for b, v in zip(batches[1:], vals[1:]):
        second.step(b, v)
    assert torch.equal(whole.alpha, second.alpha)
    assert whole.dual == second.dual
    assert whole.derive() == second.derive()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    space = get_space("mbv2", **TINY)
    cheapest = load_arch_costs(f"lut:{path}", space).cheapest()[1]
    with pytest.raises(InvalidInputError, match=f"smallest reachable limit is {cheapest:.4g}"):
        _trainer(_config("fbnet", latency=f"lut:{path}", limit_ms=cheapest / 2))
    with pytest.raises(InvalidInputError, match="mode=hard needs a latency limit"):
        TRAINERS.get("proxyless").resolve_options({"mode": "hard"})
    with pytest.raises(InvalidInputError, match="limit_ms needs a latency in ms"):
        TRAINERS.get("fbnet").resolve_options({"limit_ms": 2.0})
    with pytest.raises(InvalidInputError, match="mode must be soft or hard"):
        TRAINERS.get("fbnet").resolve_options({"mode": "strict"})
    with pytest.raises(InvalidInputError, match="derive must be auto, probable or scored"):
        TRAINERS.get("fbnet").resolve_options({"derive": "best"})
    with pytest.raises(InvalidInputError, match="derive_samples must be an integer >= 1"):
        TRAINERS.get("proxyless").resolve_options({"derive_samples": 0})
    with pytest.raises(InvalidInputError, match="is not one of"):
        load_arch_costs("lut", space)
    with pytest.raises(InvalidInputError, match="no such file"):
        load_arch_costs(f"lut:{tmp_path / 'absent.csv'}", space)
    other = get_space("mbv2", **{**TINY, "stage_depths": [1, 1, 1, 1, 1, 1]})
    with pytest.raises(InvalidInputError, match="build a table for this space"):
        load_arch_costs(f"lut:{path}", other)
    with pytest.raises(InvalidInputError, match="describe nb201 cells"):
        load_arch_costs(f"predictor:{path}", space)


def test_command_line_names_the_smallest_reachable_limit(tmp_path: Path, capsys) -> None:
    from slimforge.cli import main

    path = _write_lut(tmp_path / "lut.csv", TINY)
    cheapest = load_arch_costs(f"lut:{path}", get_space("mbv2", **TINY)).cheapest()[1]
    digits = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(digits, x_train=rng.integers(0, 255, (40, 3, 32, 32), dtype=np.uint8),
             y_train=rng.integers(0, 10, 40), x_test=rng.integers(0, 255, (8, 3, 32, 32), dtype=np.uint8),
             y_test=rng.integers(0, 10, 8))  # fmt: skip
    argv = ["supernet", "train", "--data", f"npz:{digits}", "--space", "mbv2", "--epochs", "1",
            "--method", "fbnet", "--out", str(tmp_path / "run")]  # fmt: skip
    argv += [a for k, v in TINY.items() for a in ("--space-arg", f"{k}={json.dumps(v).replace(' ', '')}")]
    argv += ["--set", f"latency=lut:{path}", "--set", "limit_ms=0.01"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"smallest reachable limit is {cheapest:.4g}" in err


@pytest.mark.slow
@pytest.mark.skipif(not NB201_TABLE.exists(), reason="../shared/data/nb201 is absent")
def test_nb201_device_table_gives_an_additive_surrogate_and_hard_mode_fits_it() -> None:
    space_kwargs = {"channels": 4, "cells_per_stage": 1}
    space = get_space("nb201", **space_kwargs)
    costs = load_arch_costs(f"table:{NB201_TABLE}", space)
    assert costs.unit == "ms" and "additive surrogate" in costs.note
    cheapest = costs.cheapest()[1]
    limit = cheapest + 0.1 * (costs.of((3,) * 6) - cheapest)
    config = _config(
        "proxyless", "nb201", space_kwargs, latency=f"table:{NB201_TABLE}", limit_ms=limit, mode="hard"
    )
    trainer = _trainer(config)
    for batch, val in zip(_batches(0, 2), _batches(1, 2)):
        trainer.step(batch, val)
    assert costs.of(trainer.derive()) <= limit + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "options"), [("fbnet", {"beta": 5.0, "gamma": 2.0}), ("proxyless", {"lam": 20.0})]
)
def test_soft_mode_lowers_the_expected_latency(tmp_path: Path, method: str, options: dict) -> None:
    path = _write_lut(tmp_path / "lut.csv", TINY)
    trainer = _trainer(_config(method, latency=f"lut:{path}", **options), total_steps=8)
    before = float(trainer.expected_cost().detach())
    for batch, val in zip(_batches(0, 4), _batches(1, 4)):
        trainer.step(batch, val)
    assert float(trainer.expected_cost().detach()) < before
    assert trainer.dual == 0.0  # soft mode has no multiplier


@pytest.mark.slow
@pytest.mark.skipif(not NB201_TABLE.exists(), reason="../shared/data/nb201 is absent")
def test_an_additive_predictor_is_reproduced_exactly(tmp_path: Path) -> None:
    from slimforge.hardware import create_predictor, read_device_table

    table = read_device_table(NB201_TABLE)
    predictor = create_predictor("macs_linear").fit(table.genomes[:50], table.latency_ms[:50])
    predictor.save(tmp_path / "p.json")
    space = get_space("nb201")
    costs = load_arch_costs(f"predictor:{tmp_path / 'p.json'}", space)
    genomes = [space.sample(np.random.default_rng(s)) for s in range(5)]
    # MACs add up over the edges (every non-none edge runs), so the additive surrogate is exact.
    assert [costs.of(g) for g in genomes] == pytest.approx(list(predictor.predict(genomes)), rel=1e-9)


def test_warmup_trains_the_weights_only(tmp_path: Path) -> None:
    space_kwargs = {"channels": 4, "cells_per_stage": 1}
    trainer = _trainer(_config("proxyless", "nb201", space_kwargs, warmup=0.5), total_steps=4)
    alpha = trainer.alpha.detach().clone()
    for batch, val in zip(_batches(0, 2), _batches(1, 2)):
        trainer.step(batch, val)
    assert torch.equal(alpha, trainer.alpha.detach())
    trainer.step(*_batches(2, 2))
    assert not torch.equal(alpha, trainer.alpha.detach())
