"""Supernets of the layer-wise spaces (mbv2, shufflenet): SPOS weight sharing, exact paths, extraction."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.spaces._mbv2_shuffle_layerwise import LayerwiseSpace
from slimforge.spaces.mbv2 import MBV2Space
from slimforge.spaces.shufflenet import ShuffleNetSpace

# Shallow CIFAR spaces keep supernet construction (one module per choice per layer) fast.
SPACES = {
    "mbv2": lambda: MBV2Space(width=0.25, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1), sharing="separate"),
    "shufflenet": lambda: ShuffleNetSpace(
        width=0.25, resolution=32, stage_depths=(2, 2, 3, 2), sharing="separate"
    ),
    "shufflenet-elastic": lambda: ShuffleNetSpace(width=0.25, resolution=32, stage_depths=(2, 2, 3, 2)),
    "mbv2-elastic": lambda: MBV2Space(width=0.25, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1)),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=sorted(SPACES))
def trained(request):
    """A supernet whose BN layers hold non-trivial affine parameters and running statistics."""
    torch.manual_seed(0)
    space = SPACES[request.param]()
    supernet = space.supernet(num_classes=10)
    with torch.no_grad():
        for m in supernet.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    supernet.train()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for step in range(4):
            supernet(_images(4, step), space.sample(rng))
    return space, supernet.eval()


def _genomes(space: LayerwiseSpace, seed: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    shallowest = tuple(n - 1 for n in space.num_choices)  # the identity wherever it is allowed
    widest = tuple(len(space.block_tokens) - 1 for _ in space.num_choices)
    return [space.sample(rng) for _ in range(3)] + [shallowest, widest]


def _separate(trained):
    space, supernet = trained
    if space.sharing != "separate":
        pytest.skip("an elastic supernet has one entangled block per layer, tested below")
    return space, supernet


def test_one_module_per_choice_per_layer_and_identity_has_none(trained) -> None:
    space, supernet = _separate(trained)
    assert len(supernet.choices) == space.num_genes
    for i, blocks in enumerate(supernet.choices):
        assert len(blocks) == len(space.block_tokens)
        assert not any(isinstance(b, nn.Identity) for b in blocks)
    fixed = _params(supernet.stem) + _params(supernet.head) + _params(supernet.classifier)
    assert _params(supernet) == fixed + sum(_params(b) for blocks in supernet.choices for b in blocks)
    # Each choice module is the standalone layer it stands for, one to one.
    for choice in range(len(space.block_tokens)):
        net = space.build([choice] * space.num_genes)
        for layer, blocks in zip(net.layers, supernet.choices):
            assert _params(layer) == _params(blocks[choice])


def test_extract_matches_the_supernet_in_eval_mode(trained) -> None:
    space, supernet = trained
    running_vars = torch.cat([m.running_var for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)])
    assert not torch.allclose(running_vars, torch.ones_like(running_vars))  # the check below can fail
    x = _images(2, seed=100)
    for genome in _genomes(space, seed=1):
        net = supernet.extract(genome)
        assert not net.training
        with torch.no_grad():
            expected, got = supernet(x, genome), net(x)
        assert got.abs().max() > 1e-3
        assert (got - expected).abs().max() <= 1e-5, space.to_string(genome)


def test_extract_of_an_untouched_network_would_differ(trained) -> None:
    space, supernet = trained
    genome = _genomes(space, seed=2)[0]
    fresh = space.build(genome).eval()
    with torch.no_grad():
        assert (fresh(_images(2, 5)) - supernet(_images(2, 5), genome)).abs().max() > 1e-3


def test_forward_runs_exactly_the_chosen_path(trained) -> None:
    space, supernet = _separate(trained)
    genome = _genomes(space, seed=3)[0]
    supernet.zero_grad(set_to_none=True)
    supernet(_images(2, 7), genome).square().sum().backward()
    try:
        for i, (blocks, chosen) in enumerate(zip(supernet.choices, genome)):
            for c, block in enumerate(blocks):
                has_grad = [p.grad is not None for p in block.parameters()]
                assert all(has_grad) if c == chosen else not any(has_grad), (i, c, chosen)
        assert all(p.grad is not None for p in supernet.stem.parameters())
    finally:
        supernet.zero_grad(set_to_none=True)


def test_extract_copies_rather_than_shares(trained) -> None:
    space, supernet = trained
    genome = _genomes(space, seed=4)[0]
    net = supernet.extract(genome)
    before = [p.clone() for p in supernet.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    assert all(torch.equal(a, b) for a, b in zip(before, supernet.parameters()))
    assert supernet.train().extract(genome).training
    supernet.eval()


def test_state_dict_round_trip_through_weights_only_load(trained) -> None:
    space, supernet = trained
    genome = _genomes(space, seed=5)[0]
    with torch.no_grad():
        expected = supernet(_images(2, 9), genome)
    buffer = io.BytesIO()
    torch.save(supernet.state_dict(), buffer)
    buffer.seek(0)
    with torch.no_grad():
        for p in supernet.parameters():
            p.zero_()
    supernet.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(supernet(_images(2, 9), genome), expected)


def test_forward_rejects_a_genome_of_the_wrong_shape(trained) -> None:
    space, supernet = trained
    with torch.no_grad():
        with pytest.raises(InvalidInputError, match="genes"):
            supernet(_images(1, 0), [0] * (space.num_genes - 1))
        strided = space.num_choices.index(len(space.block_tokens))  # a gene without the identity
        genome = [0] * space.num_genes
        genome[strided] = space.identity_choice
        with pytest.raises(InvalidInputError, match=f"gene {strided} "):
            supernet(_images(1, 0), genome)


# ------------------------------------------------------------------ elastic (Once-for-All) sharing


def test_elastic_choices_are_slices_of_one_block_per_layer() -> None:
    space = MBV2Space(width=0.25, resolution=32, stage_depths=(2, 2, 2, 2, 2, 1), sharing="elastic")
    supernet = space.supernet(num_classes=10)
    assert len(supernet.layers) == space.num_genes
    widest = space.build([5] * space.num_genes)  # k7e6 everywhere: the stored block per layer
    assert _params(supernet) == _params(widest)
    # a k3 path trains only the centre 3x3 of the 7x7 depthwise kernels, and e3 only the first channels
    genome = tuple(0 for _ in range(space.num_genes))  # k3e3
    supernet.zero_grad(set_to_none=True)
    supernet(_images(2, 1), genome).square().sum().backward()
    layer = supernet.layers[0]
    grad = layer.conv_dw.weight.grad
    mid = layer.mid[3]
    assert grad[:mid, :, 2:5, 2:5].abs().sum() > 0
    assert grad[:, :, 0].abs().sum() == 0 and grad[mid:].abs().sum() == 0
    assert layer.conv_pwl.weight.grad[:, mid:].abs().sum() == 0


def test_elastic_sharing_is_checked_and_named() -> None:
    with pytest.raises(InvalidInputError, match="sharing='shared' is invalid; use one of separate, elastic"):
        MBV2Space(sharing="shared")
    # the default: separate weights do not train on these spaces (issue 16)
    assert MBV2Space().sharing == ShuffleNetSpace().sharing == "elastic"
    with pytest.raises(InvalidInputError, match="shufflenet: sharing='slices' is invalid"):
        ShuffleNetSpace(sharing="slices")
    # Named either way, so a repr (a cache key) from before the default changed never matches.
    assert "sharing='elastic'" in repr(MBV2Space(resolution=32))
    assert "sharing='separate'" in repr(MBV2Space(resolution=32, sharing="separate"))
    assert "sharing='elastic'" in repr(ShuffleNetSpace(resolution=32))
    # Lookup tables are keyed by the networks, which sharing does not change: a table built before
    # (its key: the old repr, without sharing, or with sharing='elastic') fits either supernet.
    elastic, separate = MBV2Space(resolution=32), MBV2Space(resolution=32, sharing="separate")
    assert (
        elastic.network_key() == separate.network_key() == repr(separate).replace(", sharing='separate'", "")
    )
    assert elastic.matches_network_key(separate.network_key()) and separate.matches_network_key(repr(elastic))
    assert elastic.matches_network_key(repr(elastic)) and elastic.matches_network_key(repr(separate))
    assert not MBV2Space(resolution=32, width=0.5).matches_network_key(elastic.network_key())


def test_elastic_shufflenet_shares_kernels_and_the_pointwise_convolutions() -> None:
    space = SPACES["shufflenet-elastic"]()
    supernet = space.supernet(num_classes=10)
    assert len(supernet.layers) == space.num_genes
    separate = SPACES["shufflenet"]().supernet(num_classes=10)
    assert _params(supernet) < _params(separate)
    # an sh3 path trains only the centre 3x3 of the 7x7 depthwise kernels and none of the Xception layers;
    # the Xception path writes through the same pointwise convolutions
    for choice, trained_x in ((0, False), (3, True)):
        supernet.zero_grad(set_to_none=True)
        genome = tuple(choice for _ in range(space.num_genes))
        supernet(_images(2, 1), genome).square().sum().backward()
        layer = supernet.layers[1]  # stride 1
        assert layer.pw_in[0].weight.grad.abs().sum() > 0 and layer.pw_out[0].weight.grad.abs().sum() > 0
        assert (layer.x_pw2[0].weight.grad is not None) == trained_x
        if not trained_x:
            grad = layer.dw[0].weight.grad
            assert grad[:, :, 2:5, 2:5].abs().sum() > 0 and grad[:, :, 0].abs().sum() == 0


@pytest.mark.parametrize("name", sorted(SPACES))
def test_gated_forward_with_one_hot_gates_is_the_sampled_path(name: str) -> None:
    # FBNet and ProxylessNAS train through forward_gated, on separate and elastic weights alike.
    torch.manual_seed(0)
    space = SPACES[name]()
    supernet = space.supernet(num_classes=10).eval()
    genome = space.sample(np.random.default_rng(3))
    gates = torch.zeros(space.num_genes, max(space.num_choices))
    for i, c in enumerate(genome):
        gates[i, c] = 1.0
    images = _images(2, 4)
    with torch.no_grad():
        gated = supernet.forward_gated(images, gates, [[c] for c in genome])
        torch.testing.assert_close(gated, supernet(images, genome))
    with pytest.raises(InvalidInputError, match="active choices"):
        supernet.forward_gated(images, gates, [[99]] * space.num_genes)
