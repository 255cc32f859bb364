"""The NAS-Bench-201 supernet: the single path equals the extracted standalone network, and the DARTS /
GDAS relaxations reduce to that path for one-hot weights while passing gradients to every alpha."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimforge.errors import InvalidInputError
from slimforge.spaces.nb201 import NB201Space
from slimforge.spaces.nb201_supernet import NB201Supernet

# Dead edges (node 1 unreachable), an all-none cell, a cell of convolutions, two random ones.
GENOMES = [(0, 1, 2, 3, 3, 4), (0, 0, 0, 0, 0, 0), (3, 3, 3, 3, 3, 3), (4, 2, 1, 0, 3, 2), (1, 0, 3, 2, 0, 1)]


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_bn(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial BN statistics and affine parameters, so that a missed copy shows up."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)


@pytest.fixture(scope="module")
def small() -> NB201Supernet:
    torch.manual_seed(0)
    supernet = NB201Supernet(NB201Space(channels=8, cells_per_stage=2), num_classes=10)
    _randomise_bn(supernet, 1)
    # A few train-mode passes on sampled paths as well: statistics that differ from path to path.
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(3):
            supernet.train()(torch.randn(4, 3, 16, 16), supernet.space.sample(rng))
    return supernet.eval()


@pytest.mark.parametrize("genome", GENOMES)
def test_extract_matches_supernet_path_in_eval_mode(small: NB201Supernet, genome: tuple[int, ...]) -> None:
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    net = small.extract(genome)
    assert type(net) is type(small.space.build(genome))
    assert not net.training
    with torch.no_grad():
        diff = (small(x, genome) - net(x)).abs().max().item()
    assert diff <= 1e-5


@pytest.mark.slow
def test_extract_at_the_benchmark_size() -> None:
    torch.manual_seed(0)
    supernet = NB201Supernet(NB201Space(), num_classes=10)
    _randomise_bn(supernet, 3)
    supernet.eval()
    genome = (3, 1, 2, 4, 3, 1)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (supernet(x, genome) - supernet.extract(genome)(x)).abs().max().item() <= 1e-5


def test_extract_copies_the_weights_of_the_chosen_operation_only(small: NB201Supernet) -> None:
    genome = (3, 2, 3, 3, 3, 3)
    net = small.extract(genome)
    other = small.extract((2, 2, 3, 3, 3, 3))
    # Edge 0->1 of the first cell: 3x3 conv in one, 1x1 conv in the other, each the supernet's own.
    assert torch.equal(
        net.cells[0].edges["1_0"][1].weight, small.cells[0].edges["1_0"].ops["nor_conv_3x3"][1].weight
    )
    assert torch.equal(
        other.cells[0].edges["1_0"][1].weight, small.cells[0].edges["1_0"].ops["nor_conv_1x1"][1].weight
    )


def test_extract_is_independent_of_the_supernet(small: NB201Supernet) -> None:
    net = small.extract(GENOMES[2])
    with torch.no_grad():
        net.classifier.weight.add_(1.0)
    assert not torch.equal(net.classifier.weight, small.classifier.weight)


def test_one_hot_mixture_and_sample_equal_the_path(small: NB201Supernet) -> None:
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    for genome in GENOMES:
        one_hot = torch.nn.functional.one_hot(torch.tensor(genome), 5).float()
        with torch.no_grad():
            path = small(x, genome)
            assert torch.allclose(small.forward_mixture(x, one_hot), path, atol=1e-5)
            assert torch.allclose(small.forward_sampled(x, one_hot), path, atol=1e-5)


def test_mixture_gradient_reaches_every_alpha(small: NB201Supernet) -> None:
    alpha = torch.zeros(6, 5, requires_grad=True)
    x = torch.randn(2, 3, 16, 16)
    small.forward_mixture(x, torch.softmax(alpha, dim=1)).sum().backward()
    assert alpha.grad is not None and bool((alpha.grad != 0).all())


def test_straight_through_sample_gradient_reaches_every_alpha(small: NB201Supernet) -> None:
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(6)).requires_grad_()
    soft = torch.softmax(alpha, dim=1)
    hard = torch.zeros_like(soft).scatter_(1, soft.argmax(1, keepdim=True), 1.0) - soft.detach() + soft
    small.forward_sampled(torch.randn(2, 3, 16, 16), hard).sum().backward()
    assert alpha.grad is not None and bool((alpha.grad != 0).all())


def test_genome_from_weights_is_the_argmax_per_edge(small: NB201Supernet) -> None:
    weights = torch.zeros(6, 5)
    genome = (4, 0, 2, 1, 3, 3)
    weights[torch.arange(6), torch.tensor(genome)] = 1.0
    assert small.genome_from_weights(weights) == genome


def test_bad_inputs_raise_people_facing_errors(small: NB201Supernet) -> None:
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(InvalidInputError, match="genes"):
        small(x, (0, 1, 2))
    with pytest.raises(InvalidInputError, match="gene 0"):
        small(x, (5, 0, 0, 0, 0, 0))
    with pytest.raises(InvalidInputError, match=r"\(6, 5\)"):
        small.forward_mixture(x, torch.zeros(5, 6))
    with pytest.raises(InvalidInputError, match="NB201Space"):
        NB201Supernet("nb201", 10)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="num_classes"):
        NB201Supernet(NB201Space(), 0)
