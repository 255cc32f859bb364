"""Zero-cost proxies: purity, determinism, known values, bad input, batch scoring and ensembles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.estimators import (
    PROXIES,
    ProxyNotApplicableError,
    ProxySkippedWarning,
    build_network,
    correlate,
    ensemble,
    get_proxy,
    normalized_ranks,
    rank_average,
    score_architectures,
    score_model,
    vote,
)
from slimforge.spaces import NB201Space
from slimforge.testing.proxies import ProxyContract
from slimforge.zoo import create_model

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GENOME = (
    3,
    2,
    4,
    1,
    3,
    1,
)  # |nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|
DEAD = (0, 0, 0, 0, 0, 0)  # every edge 'none': the output does not depend on the input


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_space() -> NB201Space:
    return NB201Space(channels=4, cells_per_stage=1)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.arange(8) % 10


def _snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "dtypes": [p.dtype for p in model.parameters()],
    }


def _assert_same(before: dict, after: dict) -> None:
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k
    assert before["modes"] == after["modes"]
    assert before["requires_grad"] == after["requires_grad"]
    assert before["dtypes"] == after["dtypes"]
    for a, b in zip(before["grads"], after["grads"]):
        assert (a is None and b is None) or torch.equal(a, b)


class TestEveryRegisteredProxy(ProxyContract):
    """The shipped contract (slimforge.testing.proxies): pure, deterministic, finite, for every proxy."""

    @pytest.fixture(params=PROXIES.list())
    def proxy(self, request):
        return get_proxy(request.param)


@pytest.mark.parametrize("name", PROXIES.list())
def test_proxy_scores_a_zoo_model(name, batch):
    model = create_model("squeezenet_1_1", num_classes=10)
    before = _snapshot(model)
    value = get_proxy(name).score(model, (batch[0][:4], batch[1][:4]))
    assert math.isfinite(value)
    _assert_same(before, _snapshot(model))


def test_num_params_and_macs_match_hand_counts():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(5 * 8 * 8, 4))
    x = torch.randn(2, 3, 8, 8)
    assert get_proxy("num_params").score(model, x) == 3 * 5 * 9 + 5 * 64 * 4 + 4
    assert get_proxy("macs").score(model, x) == 8 * 8 * 5 * 3 * 9 + 5 * 64 * 4


def test_synflow_of_a_linear_chain_is_twice_the_path_sum():
    # R = 1ᵀ|W2||W1|1 is homogeneous of degree 1 in each layer, so Σ w·∂R/∂w = R per layer.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False))
    w1, w2 = model[0].weight.detach().abs().double(), model[2].weight.detach().abs().double()
    r = float(w2.sum(0) @ w1.sum(1))
    assert get_proxy("synflow").score(model, torch.randn(4, 3)) == pytest.approx(2 * r, rel=1e-12)


def test_naswot_is_the_logdet_of_the_hamming_kernel():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    # codes 10, 11, 00: agreements [[2,1,1],[1,2,0],[1,0,2]], determinant 2*(4-0) - 1*(2-0) + 1*(0-2) = 4.
    assert get_proxy("naswot").score(model, x) == pytest.approx(math.log(4.0))


def test_proxy_that_cannot_run_is_skipped_with_a_warning(batch):
    no_relu = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.LazyLinear(10))
    no_relu(batch[0][:2])  # materialise the lazy layer
    with pytest.raises(ProxyNotApplicableError, match="ReLU"):
        get_proxy("naswot").score(no_relu, batch)
    with pytest.warns(ProxySkippedWarning, match="naswot"):
        results = score_model(no_relu, batch, "naswot,num_params")
    assert results["naswot"].status == "skipped" and math.isnan(results["naswot"].score)
    assert results["num_params"].status == "ok"
    # Without labels, the loss-based proxies are skipped rather than crash.
    with pytest.warns(ProxySkippedWarning, match="labels"):
        results = score_model(no_relu, batch[0], "snip,synflow")
    assert results["snip"].status == "skipped" and results["synflow"].status == "ok"
    with pytest.raises(ProxyNotApplicableError, match="Conv2d"):
        get_proxy("meco").score(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), batch)


def test_grasp_is_skipped_on_ops_without_second_derivative(batch):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Hardsigmoid(), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    with pytest.raises(ProxyNotApplicableError, match="second derivatives"):
        get_proxy("grasp").score(model, batch)


def test_nonfinite_scores_are_reported_not_ranked(batch):
    model = build_network(tiny_space(), DEAD, seed=0)
    results = score_model(model, batch, "naswot,jacob_cov,zico,synflow")
    assert results["naswot"].score == -math.inf and results["naswot"].status == "nonfinite"
    assert results["jacob_cov"].score == -math.inf and results["jacob_cov"].status == "nonfinite"
    assert results["zico"].score == -math.inf
    assert results["synflow"].score == 0.0 and results["synflow"].status == "ok"
    assert results["naswot"].to_dict()["score"] == "-inf"
    broken = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    with torch.no_grad():
        broken[1].weight[0, 0] = math.nan  # a diverged network: NaN flows through every gradient
    nan_results = score_model(broken, batch, "snip,grad_norm")
    assert all(math.isnan(r.score) and r.status == "nonfinite" for r in nan_results.values())
    scores = np.array([1.0, 2.0, -np.inf, np.nan, 3.0])
    truth = np.array([1.0, 2.0, 0.0, 5.0, 3.0])
    dropped = correlate("p", scores, truth, "drop")
    assert (dropped.num_archs, dropped.num_nan, dropped.num_inf) == (3, 1, 1)
    assert dropped.spearman_rho == pytest.approx(1.0)
    ordered = correlate("p", scores, truth, "order")
    assert ordered.num_archs == 4 and ordered.spearman_rho == pytest.approx(1.0)


def test_bad_input_names_the_problem(batch):
    with pytest.raises(UnknownNameError, match="naswot"):
        get_proxy("naswott")
    with pytest.raises(InvalidInputError, match="at least 4 images"):
        get_proxy("zico").score(build_network(tiny_space(), GENOME, seed=0), (batch[0][:3], batch[1][:3]))
    with pytest.raises(InvalidInputError, match="labels"):
        get_proxy("snip").score(nn.Linear(3, 2), (torch.randn(4, 3), torch.zeros(3, dtype=torch.long)))
    with pytest.raises(InvalidInputError, match="nn.Module"):
        get_proxy("snip").score("resnet", batch)
    with pytest.raises(InvalidInputError, match="listed twice"):
        score_model(nn.Linear(3, 2), torch.randn(4, 3), "num_params,num_params")


def test_rank_average_and_vote_by_hand():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([3.0, 1.0, 2.0])
    c = np.array([1.0, 3.0, 2.0])
    np.testing.assert_allclose(normalized_ranks(a), [1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(rank_average({"a": a, "b": b}), [2 / 3, 1 / 2, 5 / 6])
    np.testing.assert_allclose(
        rank_average({"a": a, "b": b}, {"a": 3.0, "b": 1.0}), [0.5, 0.5833333333333334, 0.9166666666666666]
    )
    # Pairwise majorities of (a, b, c): 1 beats 0 (a, c), 2 beats 0 (a, c), 2 beats 1 (a, b).
    np.testing.assert_allclose(vote({"a": a, "b": b, "c": c}), [0.0, 0.5, 1.0])
    with_nan = ensemble("rank_average", {"a": np.array([1.0, np.nan, 2.0]), "b": np.array([2.0, 1.0, 3.0])})
    assert np.isnan(with_nan[1]) and not np.isnan(with_nan[[0, 2]]).any()
    with pytest.raises(InvalidInputError, match="rule"):
        ensemble("median", {"a": a, "b": b})


def test_score_architectures_caches_to_csv(tmp_path, batch, monkeypatch):
    space = tiny_space()
    genomes = [GENOME, DEAD, (3, 3, 3, 3, 3, 3)]
    first = score_architectures(space, genomes, batch, "num_params,naswot", seed=1, cache_dir=tmp_path)
    assert first.status["naswot"] == ("ok", "nonfinite", "ok")
    assert first.array("num_params")[2] > first.array("num_params")[0] > first.array("num_params")[1]
    calls = []
    monkeypatch.setattr(type(get_proxy("naswot")), "_score", lambda *a: calls.append(1) or 0.0)
    again = score_architectures(space, genomes, batch, "num_params,naswot", seed=1, cache_dir=tmp_path)
    assert calls == [] and again.scores == first.scores
    other_seed = score_architectures(space, genomes[:1], batch, "naswot", seed=2, cache_dir=tmp_path)
    assert calls == [1] and other_seed.scores["naswot"] == (0.0,)
    assert len(list(tmp_path.glob("*.csv"))) == 2


def test_canonical_network_drops_dead_edges(batch):
    space = tiny_space()
    dead_edge = (3, 0, 3, 0, 0, 0)  # the 3x3 conv 1->2 feeds node 2, which never reaches the output
    raw = score_architectures(space, [dead_edge], batch, "num_params", canonical=False)
    canon = score_architectures(space, [dead_edge], batch, "num_params", canonical=True)
    assert canon.array("num_params")[0] < raw.array("num_params")[0]


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "cifar10_subset.npz").exists(), reason="../shared/data/cifar10_subset.npz is absent"
)
def test_real_network_and_minibatch_order_clear_cases():
    from slimforge.data import load_dataset, sample_batch

    splits = load_dataset(f"npz:{DATA / 'cifar10_subset.npz'}", seed=0)
    images, labels = sample_batch(splits.train, 8, seed=0)
    space = NB201Space()  # the benchmark's 16-channel, 5-cells-per-stage network
    strong = (3, 3, 3, 3, 3, 3)  # all 3x3 convolutions: ~94% on CIFAR-10
    weak = (4, 4, 4, 4, 4, 4)  # all average pooling: no learnable cell
    res = score_architectures(space, [strong, weak], (images, labels), "synflow,naswot,meco,num_params")
    for p in res.proxies:
        assert res.array(p)[0] > res.array(p)[1], p


def test_zero_cost_estimator_ranks_dead_networks_last_and_plugs_into_top_k(batch):
    from slimforge.estimators import ZeroCostEstimator, evaluate_top_k

    space = tiny_space()
    genomes = [GENOME, DEAD, (3, 3, 3, 3, 3, 3), (4, 4, 4, 4, 4, 4)]
    estimator = ZeroCostEstimator(space, batch[0], seed=0)
    scores = estimator.score(genomes)
    assert np.isfinite(scores).all() and scores.argmin() == 1
    np.testing.assert_array_equal(estimator.score(genomes), scores)
    picked = evaluate_top_k(genomes, estimator, lambda g: 1.0, k=2, space=space)
    assert sum(picked.evaluated) == 2 and not picked.evaluated[1]


def test_batch_scoring_of_architectures_skips_with_the_architecture_named(batch, tmp_path):
    space = tiny_space()
    for _ in range(2):  # fresh, then from the cache: both warn
        with pytest.warns(ProxySkippedWarning, match=r"\|nor_conv_3x3~0\|.*needs class labels"):
            res = score_architectures(space, [GENOME], batch[0], "snip,num_params", cache_dir=tmp_path)
        assert res.status["snip"] == ("skipped",) and math.isnan(res.array("snip")[0])
        assert res.status["num_params"] == ("ok",)


def test_meco_is_the_channel_weighted_smallest_correlation_eigenvalue_and_skips_singular_layers():
    torch.manual_seed(0)
    images = torch.randn(1, 3, 8, 8)
    labels = torch.zeros(1, dtype=torch.long)
    wide = nn.Conv2d(3, 80, 3, padding=1)  # 80 channels over 64 positions: singular, adds 0
    narrow = nn.Conv2d(80, 6, 3, padding=1)  # 6 channels over 64 positions: adds 6 x its smallest eigenvalue
    model = nn.Sequential(wide, nn.ReLU(), narrow)
    with torch.no_grad():
        feats = model(images).double().flatten(2)
    z = feats - feats.mean(2, keepdim=True)
    z = z / z.norm(dim=2, keepdim=True)
    expected = 6 * float(torch.linalg.eigvalsh(z @ z.transpose(1, 2))[0, 0])
    assert expected > 0.01
    assert get_proxy("meco").score(model, (images, labels)) == pytest.approx(expected, rel=1e-9)
    with torch.no_grad():
        wide_feats = wide(images).double().flatten(2)
    c = wide_feats - wide_feats.mean(2, keepdim=True)
    c = c / c.norm(dim=2, keepdim=True)
    assert abs(float(torch.linalg.eigvalsh(c @ c.transpose(1, 2))[0, 0])) < 1e-9  # what the skip stands for
