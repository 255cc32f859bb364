"""Supernet trainers: every registered method trains (weights and, for DARTS/GDAS, alpha change) and is
deterministic for a seed; the generic ones work on any Supernet (a toy layer-wise space here); FairNAS
paths are strictly fair; BN re-calibration and inherited-weight evaluation behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.spaces import SearchSpace
from slimforge.spaces._base import Genome
from slimforge.spaces._supernet import Supernet
from slimforge.spaces.nb201 import NB201Space
from slimforge.spaces.nb201_supernet import NB201Supernet
from slimforge.supernet import (
    TRAINERS,
    EvalData,
    TrainConfig,
    evaluate,
    evaluate_many,
    make_supernet,
    recalibrate_bn,
    score_many,
)
from slimforge.supernet.fairnas import fair_paths
from slimforge.supernet.sandwich import size_extremes

KERNELS = (1, 3, 5)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- a toy layer-wise space: genes with 3, 2 and 3 choices of kernel size --------------------------


def _block(k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(4, 4, k, padding=k // 2, bias=False), nn.BatchNorm2d(4), nn.ReLU())


class ToyNet(nn.Module):
    def __init__(self, genome: Genome, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layers = nn.Sequential(*(_block(KERNELS[c]) for c in genome))
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)).mean(dim=(2, 3)))


class ToySupernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__(space, num_classes)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.choices = nn.ModuleList(
            nn.ModuleList(_block(KERNELS[c]) for c in range(n)) for n in space.num_choices
        )
        self.head = nn.Linear(4, num_classes)

    def _forward(self, x: torch.Tensor, genome: Genome) -> torch.Tensor:
        h = self.stem(x)
        for layer, c in zip(self.choices, genome):
            h = layer[c](h)
        return self.head(h.mean(dim=(2, 3)))

    def _load_into(self, net: nn.Module, genome: Genome) -> None:
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        for i, c in enumerate(genome):
            net.layers[i].load_state_dict(self.choices[i][c].state_dict())


class ToySpace(SearchSpace):
    name = "toy"

    @property
    def num_choices(self) -> list[int]:
        return [3, 2, 3]

    def _build(self, genome: Genome, num_classes: int) -> nn.Module:
        return ToyNet(genome, num_classes)

    def _supernet(self, num_classes: int) -> Supernet:
        return ToySupernet(self, num_classes)


def _config(method: str, **options) -> TrainConfig:
    return TrainConfig(data="unused", epochs=1, method=method, method_options=options, batch_size=4)


def _batches(seed: int, n: int = 2, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(4, 3, size, size, generator=g), torch.randint(0, 10, (4,), generator=g))
        for _ in range(n)
    ]


def _train_two_steps(space: SearchSpace, method: str, **options):
    config = _config(method, **options)
    supernet = TRAINERS.get(method).build_supernet(space, 10, config)
    trainer = TRAINERS.get(method)(supernet, config, total_steps=4)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    alpha_before = trainer.alpha.detach().clone() if hasattr(trainer, "alpha") else None
    vals = _batches(1)
    for batch, val in zip(_batches(0), vals):
        loss = trainer.step(batch, val if trainer.needs_val else None)
        assert np.isfinite(loss)
    return supernet, trainer, before, alpha_before


NB201_CASES = [(m, {}) for m in TRAINERS.list()] + [
    ("darts", {"order": 2}),
    ("spos", {"sampling": "canonical"}),
    ("spos", {"warmup": 0.5}),
    ("fewshot", {"gene": 2, "split": 0.25}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "options"), NB201_CASES, ids=lambda v: str(v) if v else "")
def test_each_trainer_changes_weights_and_is_deterministic(method: str, options: dict) -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    supernet, trainer, before, alpha_before = _train_two_steps(space, method, **options)
    after = supernet.state_dict()
    changed = [k for k in before if k.endswith("weight") and not torch.equal(before[k], after[k])]
    assert changed, "no weight changed"
    assert trainer.step_count == 2
    if alpha_before is not None:
        assert not torch.equal(alpha_before, trainer.alpha.detach())
        assert trainer.derive() == supernet.genome_from_weights(trainer.alpha)
    again, trainer2, _, _ = _train_two_steps(space, method, **options)
    for k, v in after.items():
        assert torch.equal(v, again.state_dict()[k]), k
    if alpha_before is not None:
        assert torch.equal(trainer.alpha, trainer2.alpha)


@pytest.mark.parametrize("method", ["spos", "fairnas", "sandwich", "rsps", "fewshot"])
def test_generic_trainers_train_any_supernet(method: str) -> None:
    supernet, _, before, _ = _train_two_steps(ToySpace(), method)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


@pytest.mark.parametrize("method", ["darts", "gdas"])
def test_relaxation_methods_refuse_a_supernet_without_architecture_weights(method: str) -> None:
    supernet = make_supernet(ToySpace(), 10, seed=0)
    with pytest.raises(InvalidInputError, match="architecture weights"):
        TRAINERS.get(method)(supernet, _config(method), total_steps=2)


def test_fair_paths_use_every_choice_exactly_once_per_gene() -> None:
    space = NB201Space()
    rng = np.random.default_rng(0)
    for _ in range(5):
        paths = fair_paths(space, rng)
        assert len(paths) == 5
        for gene in range(space.num_genes):
            assert sorted(p[gene] for p in paths) == list(range(5))
    # Unequal choice counts: m = 3 paths, every choice of every gene used at least once.
    paths = fair_paths(ToySpace(), rng)
    assert len(paths) == 3
    assert [{p[g] for p in paths} for g in range(3)] == [{0, 1, 2}, {0, 1}, {0, 1, 2}]


def test_size_extremes_by_parameters() -> None:
    assert size_extremes(NB201Space(channels=4, cells_per_stage=1)) == ((3,) * 6, (0,) * 6)
    assert size_extremes(ToySpace()) == ((2, 1, 2), (0, 0, 0))


def test_canonical_sampling_draws_only_canonical_genomes() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    trainer = TRAINERS.get("spos")(
        make_supernet(space, 10, 0), _config("spos", sampling="canonical"), total_steps=2
    )
    rng = np.random.default_rng(0)
    genomes = [trainer._sample_genome(rng, canonical=True) for _ in range(200)]
    assert all(space.canonical(g) == g for g in genomes)
    assert len(set(genomes)) > 150


def test_gdas_temperature_anneals_from_10_to_0_1() -> None:
    trainer = TRAINERS.get("gdas")(
        make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, 0), _config("gdas"), total_steps=11
    )
    assert trainer.tau == pytest.approx(10.0)
    trainer.step_count = 10
    assert trainer.tau == pytest.approx(0.1)


def test_learning_rate_follows_a_cosine_to_zero() -> None:
    supernet = make_supernet(ToySpace(), 10, 0)
    trainer = TRAINERS.get("spos")(supernet, _config("spos"), total_steps=4)
    lrs = []
    for batch in _batches(0, n=4):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.step(batch)
    assert lrs == pytest.approx(
        [0.025, 0.025 * (1 + np.cos(np.pi / 4)) / 2, 0.0125, 0.025 * (1 + np.cos(3 * np.pi / 4)) / 2]
    )
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    group = trainer.optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)


def test_bad_trainer_inputs() -> None:
    supernet = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, 0)
    with pytest.raises(UnknownNameError, match="spos"):
        TRAINERS.get("spoz")
    with pytest.raises(InvalidInputError, match="no option 'ordr'"):
        TRAINERS.get("darts")(supernet, _config("darts", ordr=2), total_steps=2)
    with pytest.raises(InvalidInputError, match="order must be 1 or 2"):
        TRAINERS.get("darts")(supernet, _config("darts", order=3), total_steps=2)
    with pytest.raises(InvalidInputError, match="sampling"):
        TRAINERS.get("spos")(supernet, _config("spos", sampling="fair"), total_steps=2)
    darts = TRAINERS.get("darts")(supernet, _config("darts"), total_steps=2)
    with pytest.raises(InvalidInputError, match="validation batch"):
        darts.step(_batches(0)[0])
    with pytest.raises(InvalidInputError, match="labels"):
        darts.step((torch.randn(4, 3, 8, 8), torch.zeros(3, dtype=torch.long)), _batches(0)[0])


# --- BN re-calibration and evaluation -------------------------------------------------------------


def test_recalibration_fixes_stale_statistics_on_a_toy_problem() -> None:
    # Two classes split by the sign of feature 0 (after normalisation); the stored statistics are
    # stale (from another input distribution), so the frozen classifier sees shifted features.
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (256,), generator=g)
    x = torch.randn(256, 2, generator=g) * 0.5 + 3.0
    x[:, 0] += torch.where(labels == 1, 1.0, -1.0)
    model = nn.Sequential(nn.BatchNorm1d(2, affine=False), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model[1].bias.zero_()
        model[0].running_mean.fill_(-2.0)
    model.eval()
    stale = (model(x).argmax(1) == labels).float().mean().item()
    old_var = model[0].running_var.clone()
    recalibrate_bn(model, x[:128], batch_size=32)
    assert not model.training and model[0].momentum == 0.1
    assert model[0].running_mean[0] == pytest.approx(x[:128, 0].mean().item(), abs=1e-4)
    assert not torch.equal(old_var, model[0].running_var)
    fresh = (model(x).argmax(1) == labels).float().mean().item()
    assert stale <= 0.6 and fresh >= 0.95


def _eval_data(recal: int = 16) -> EvalData:
    g = torch.Generator().manual_seed(3)
    return EvalData(
        recal_images=torch.randn(recal, 3, 16, 16, generator=g),
        images=torch.randn(12, 3, 16, 16, generator=g),
        labels=torch.randint(0, 10, (12,), generator=g),
        batch_size=5,
        recal_batch_size=8,
    )


def test_evaluate_equals_recalibrated_extracted_network_and_restores_the_supernet() -> None:
    supernet = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, 0)
    supernet.train()
    data = _eval_data()
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    genomes = [(3, 2, 1, 3, 4, 2), (1, 3, 0, 2, 3, 3), (2, 2, 2, 2, 2, 2)]
    scores = evaluate_many(supernet, genomes, data)
    assert supernet.training
    for k, v in supernet.state_dict().items():
        assert torch.equal(v, before[k]), k
    full = score_many(supernet, genomes, data)
    for genome, score, both in zip(genomes, scores, full):
        net = supernet.extract(genome)
        recalibrate_bn(net, data.recal_images, batch_size=8)
        with torch.no_grad():
            logits = net.eval()(data.images)
        expected = (logits.argmax(1) == data.labels).float().mean().item()
        assert score == pytest.approx(expected, abs=1e-6) and both.accuracy == score
        assert both.loss == pytest.approx(nn.functional.cross_entropy(logits, data.labels).item(), rel=1e-5)
        assert evaluate(supernet, genome, data) == score
        assert 0.0 <= score <= 1.0


def test_evaluate_without_recalibration_uses_the_supernet_statistics() -> None:
    supernet = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, 0).eval()
    data = _eval_data(recal=0)
    genome = (3, 3, 3, 3, 3, 3)
    with torch.no_grad():
        expected = (supernet(data.images, genome).argmax(1) == data.labels).float().mean().item()
    assert evaluate(supernet, genome, data) == pytest.approx(expected)


def test_make_supernet_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    b = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, seed=5)
    assert isinstance(a, NB201Supernet)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class _Mixture(nn.Module):
    """Calls the supernet's DARTS forward, so torch.func.functional_call can swap in other weights."""

    def __init__(self, supernet: NB201Supernet) -> None:
        super().__init__()
        self.sn = supernet

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.sn.forward_mixture(x, weights)


@pytest.mark.slow
def test_second_order_darts_matches_the_exact_unrolled_gradient() -> None:
    # float64 and a small finite-difference step, so that the only gap left is the approximation's
    # O(eps^2) term (with the paper's step a ReLU kink may lie within reach of the perturbation).
    supernet = make_supernet(NB201Space(channels=4, cells_per_stage=1), 10, 0).double()
    trainer = TRAINERS.get("darts")(supernet, _config("darts", order=2, fd_eps=1e-4), total_steps=10)
    (x, y), (xv, yv) = _batches(0, size=8)
    x, xv = x.double(), xv.double()
    before = [p.detach().clone() for p in trainer.weight_parameters()]
    approx = trainer._unrolled_arch_grad(x, y, (xv, yv))
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.weight_parameters()))

    # Exact: differentiate L_val(w - xi * (dL_train/dw + wd * w), alpha) through the virtual step.
    names = [n for n, p in supernet.named_parameters() if p.requires_grad]
    params = [p for _, p in supernet.named_parameters() if p.requires_grad]
    xi, wd = trainer.optimizer.param_groups[0]["lr"], trainer.config.weight_decay
    mixture = _Mixture(supernet)
    loss = nn.functional.cross_entropy(mixture(x, torch.softmax(trainer.alpha, dim=1)), y)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    unrolled = {
        f"sn.{n}": p - xi * ((0 if g is None else g) + wd * p) for n, p, g in zip(names, params, grads)
    }
    val_logits = torch.func.functional_call(mixture, unrolled, (xv, torch.softmax(trainer.alpha, dim=1)))
    (exact,) = torch.autograd.grad(nn.functional.cross_entropy(val_logits, yv), [trainer.alpha])
    (first_order,) = torch.autograd.grad(
        nn.functional.cross_entropy(
            torch.func.functional_call(
                mixture,
                {k: v.detach() for k, v in unrolled.items()},
                (xv, torch.softmax(trainer.alpha, dim=1)),
            ),
            yv,
        ),
        [trainer.alpha],
    )
    assert (exact - first_order).abs().max() > 1e-3  # the second-order term matters here
    assert torch.allclose(approx, exact, rtol=1e-4, atol=1e-7), (approx - exact).abs().max()
