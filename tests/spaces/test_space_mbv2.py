"""The layer-wise MobileNetV2 space: genes and choices, MobileNetV2 inside it, strings, canonical form, ONNX."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from slimforge.errors import InvalidInputError
from slimforge.nn.mbconv import MBConv
from slimforge.spaces import SPACES, get_space
from slimforge.spaces.mbv2 import MBV2_BLOCKS, MBV2Space
from slimforge.zoo import create_model

K3E6 = MBV2_BLOCKS.index((3, 6))
MOBILENET_V2_DEPTHS = (2, 3, 4, 3, 3, 1)  # Sandler et al. 2018, Table 2, after the first block


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module, size: int) -> float:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2


def _last_map_side(space: MBV2Space, size: int) -> int:
    net = space.build(space.canonical([0] * space.num_genes)).eval()
    seen = []
    net.head.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-1]))
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    return seen[0]


def _mobilenet_v2_genome(space: MBV2Space) -> tuple[int, ...]:
    genome: list[int] = []
    for depth, space_depth in zip(MOBILENET_V2_DEPTHS, space.stage_depths):
        genome += [K3E6] * depth + [space.identity_choice] * (space_depth - depth)
    return tuple(genome)


def test_registered_and_created_by_name() -> None:
    assert "mbv2" in SPACES.list()
    space = get_space("mbv2", width=0.5, resolution=32)
    assert isinstance(space, MBV2Space) and space.width == 0.5 and space.input_shape == (1, 3, 32, 32)


def test_twenty_layers_seven_choices_identity_only_where_the_shape_is_kept() -> None:
    space = MBV2Space()
    assert space.num_genes == 20 and space.stage_depths == (4, 4, 4, 4, 3, 1)
    firsts = {0, 4, 8, 12, 16, 19}  # the first layer of each stage strides or widens
    assert space.num_choices == [6 if i in firsts else 7 for i in range(20)]
    for slot, n in zip(space.slots, space.num_choices):
        assert (n == 7) == (slot.stride == 1 and slot.in_chs == slot.out_chs)
    assert [s.stride for s in space.slots if s.in_chs != s.out_chs or s.stride != 1] == [2, 2, 2, 1, 2, 1]
    assert MBV2Space(identity=False).num_choices == [6] * 20


@pytest.mark.slow  # the first FlopCounterMode of a session takes seconds to set up
def test_mobilenet_v2_is_a_member_with_its_exact_size_and_cost() -> None:
    space = MBV2Space()
    ours = space.build(_mobilenet_v2_genome(space), num_classes=1000)
    reference = create_model("mobilenet_v2", num_classes=1000)
    assert _params(ours) == _params(reference)
    assert _macs(ours, 64) == _macs(reference, 64)


def test_blocks_follow_the_gene() -> None:
    space = MBV2Space(width=0.5)
    genome = [0] * space.num_genes
    genome[1], genome[2], genome[3] = (
        MBV2_BLOCKS.index((7, 3)),
        space.identity_choice,
        MBV2_BLOCKS.index((5, 6)),
    )
    net = space.build(genome)
    layer1, layer2, layer3 = net.layers[1], net.layers[2], net.layers[3]
    assert isinstance(layer1, MBConv) and layer1.conv_dw[0].kernel_size == (7, 7)
    assert layer1.mid_chs == 3 * space.slots[1].in_chs
    assert isinstance(layer2, nn.Identity)
    assert isinstance(layer3, MBConv) and layer3.conv_dw[0].kernel_size == (5, 5)
    assert layer3.mid_chs == 6 * space.slots[3].in_chs
    assert not net.layers[0].has_residual and layer1.has_residual


def test_cifar_adaptation_keeps_a_4x4_last_map_at_32() -> None:
    assert _last_map_side(MBV2Space(width=0.25, resolution=32), 32) == 4
    assert _last_map_side(MBV2Space(width=0.25, resolution=224), 64) == 2
    small = MBV2Space.small()
    assert small.resolution == 32 and small.num_genes == 11
    assert small.build(small.sample(np.random.default_rng(0)))(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_narrow_cifar_width_offers_identity_in_a_first_layer_that_keeps_the_shape() -> None:
    space = MBV2Space(width=0.35, resolution=32)
    assert space.slots[0].in_chs == space.slots[0].out_chs == 8 and space.slots[0].stride == 1
    assert space.num_choices[0] == 7 and space.num_choices[4] == 6


def test_width_scales_the_body_but_not_the_last_conv_below_one() -> None:
    narrow, wide = MBV2Space(width=0.5), MBV2Space(width=1.4)
    assert narrow.slots[-1].out_chs == 160 and narrow.num_features == 1280
    assert wide.slots[-1].out_chs == 448 and wide.num_features == 1792


def test_strings_round_trip_and_read_well() -> None:
    space = MBV2Space()
    rng = np.random.default_rng(1)
    for _ in range(20):
        genome = space.sample(rng)
        assert space.from_string(space.to_string(genome)) == genome
    text = space.to_string(_mobilenet_v2_genome(space))
    assert text.startswith("k3e6-k3e6-id-id-k3e6-k3e6-k3e6-id-") and text.count("-") == 19


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("k3e6-" * 19 + "k9e6", "'k9e6'"),
        ("k3e6-" * 18 + "k3e6", "19 '-'-separated layers"),
        ("id-" + "k3e6-" * 18 + "k3e6", "layer 0 cannot be 'id'"),
    ],
)
def test_bad_strings_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        MBV2Space().from_string(text)


def test_identity_string_rejected_without_the_identity_choice() -> None:
    text = MBV2Space().to_string(_mobilenet_v2_genome(MBV2Space()))
    with pytest.raises(InvalidInputError, match="no identity choice"):
        MBV2Space(identity=False).from_string(text)


def test_canonical_moves_identities_behind_the_blocks_of_a_stage() -> None:
    space = MBV2Space()
    k3e3, k5e6, ident = 0, 3, space.identity_choice
    genome = list(_mobilenet_v2_genome(space))
    genome[1:4] = [ident, k5e6, k3e3]  # stage 0: k3e6 id k5e6 k3e3
    canon = space.canonical(genome)
    assert canon[:4] == (K3E6, k5e6, k3e3, ident)
    assert space.canonical(canon) == canon
    # Different block orders are different networks and stay apart.
    swapped = list(canon)
    swapped[1:3] = [k3e3, k5e6]
    assert space.canonical(swapped) != canon


@pytest.mark.slow  # builds six networks
def test_canonical_genomes_compute_the_same_function() -> None:
    torch.manual_seed(0)
    space = MBV2Space(width=0.25, resolution=32)
    rng = np.random.default_rng(2)
    for _ in range(3):
        genome = space.sample(rng)
        canon = space.canonical(genome)
        net, canon_net = space.build(genome).eval(), space.build(canon).eval()
        # Same network: the blocks (in order) and the fixed parts carry over one to one.
        blocks = [m for m in net.layers if not isinstance(m, nn.Identity)]
        canon_blocks = [m for m in canon_net.layers if not isinstance(m, nn.Identity)]
        assert len(blocks) == len(canon_blocks)
        for src, dst in zip(blocks, canon_blocks):
            dst.load_state_dict(src.state_dict())
        for part in ("stem", "head", "classifier"):
            getattr(canon_net, part).load_state_dict(getattr(net, part).state_dict())
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(canon_net(x), net(x))


def test_operators_keep_the_per_gene_choices() -> None:
    space = MBV2Space()
    rng = np.random.default_rng(3)
    genomes = [space.sample(rng) for _ in range(200)]
    columns = np.array(genomes).T
    for column, n in zip(columns, space.num_choices):
        assert set(column) == set(range(n))  # the identity is drawn where allowed, never elsewhere
    child = space.crossover(genomes[0], genomes[1], rng)
    assert all(c in (a, b) for a, b, c in zip(genomes[0], genomes[1], child))
    mutant = space.mutate(genomes[0], rng, prob=1.0)
    assert all(m != g for m, g in zip(mutant, genomes[0]))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"width": 0}, "width=0"),
        ({"resolution": 4}, "resolution=4"),
        ({"stage_depths": (4, 4, 4)}, "stage_depths"),
        ({"stage_depths": (4, 4, 0, 4, 3, 1)}, "stage_depths"),
        ({"dropout": 1.0}, "dropout=1.0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        MBV2Space(**kwargs)


@pytest.mark.slow  # export + session creation take about a second
def test_onnx_export_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    space = MBV2Space(width=0.25, resolution=32)
    genome = space.from_string(
        "k3e3-k5e6-id-k7e3-k3e6-id-k5e3-k7e6-k5e6-k3e3-id-id-k7e6-k3e6-id-k5e3-k7e3-k3e6-id-k5e6"
    )
    net = space.build(genome).eval()
    x = torch.randn(1, 3, 32, 32)
    buffer = io.BytesIO()
    torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, net(x).numpy(), rtol=1e-4, atol=1e-5)
