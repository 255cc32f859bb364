"""The SPOS ShuffleNetV2 space: genes and choices, SPOS's widths, strings, canonical form, ONNX."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.nn.shuffle import ShuffleV2Unit, ShuffleXceptionUnit
from slimforge.spaces import SPACES, get_space
from slimforge.spaces.shufflenet import SHUFFLE_BLOCKS, ShuffleNetSpace

STAGE_FIRSTS = (0, 4, 8, 16)  # SPOS: 4 / 4 / 8 / 4 layers, the first of each stage strides


pytestmark = pytest.mark.usefixtures("one_thread")


def _last_map_side(space: ShuffleNetSpace, size: int) -> int:
    net = space.build([0] * space.num_genes).eval()
    seen = []
    net.head.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-1]))
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    return seen[0]


def test_registered_and_created_by_name() -> None:
    assert "shufflenet" in SPACES.list()
    space = get_space("shufflenet", width=0.5, resolution=32)
    assert isinstance(space, ShuffleNetSpace) and space.input_shape == (1, 3, 32, 32)


def test_spos_layout_and_identity_only_in_non_stride_layers() -> None:
    space = ShuffleNetSpace()
    assert space.num_genes == 20 and space.stage_depths == (4, 4, 8, 4)
    assert space.num_choices == [4 if i in STAGE_FIRSTS else 5 for i in range(20)]
    assert [space.slots[i].stride for i in STAGE_FIRSTS] == [2, 2, 2, 2]
    assert all(s.stride == 1 for i, s in enumerate(space.slots) if i not in STAGE_FIRSTS)
    spos = ShuffleNetSpace(identity=False)
    assert spos.num_choices == [4] * 20 and spos.size == 4**20


def test_spos_channels_and_width_scaling() -> None:
    space = ShuffleNetSpace()
    assert space.stem_chs == 16 and space.num_features == 1024
    assert [space.slots[i].out_chs for i in STAGE_FIRSTS] == [64, 160, 320, 640]
    half = ShuffleNetSpace(width=0.5)
    assert half.stem_chs == 8 and half.num_features == 1024
    assert [half.slots[i].out_chs for i in STAGE_FIRSTS] == [32, 80, 160, 320]


def test_blocks_follow_the_gene() -> None:
    space = ShuffleNetSpace(width=0.25)
    genome = [0, 1, 2, 3, 0, space.identity_choice] + [0] * 14
    net = space.build(genome)
    for i, kernel in enumerate((3, 5, 7)):
        unit = net.layers[i]
        assert type(unit) is ShuffleV2Unit and unit.kernel_size == kernel
        assert any(
            isinstance(m, nn.Conv2d) and m.kernel_size == (kernel, kernel) and m.groups > 1
            for m in unit.modules()
        )
    assert type(net.layers[3]) is ShuffleXceptionUnit
    assert isinstance(net.layers[5], nn.Identity)
    assert net.layers[0].stride == 2 and net.layers[1].stride == 1


def test_cifar_adaptation_drops_the_stem_stride() -> None:
    assert _last_map_side(ShuffleNetSpace(width=0.25, resolution=32), 64) == 4
    assert _last_map_side(ShuffleNetSpace(width=0.25, resolution=224), 64) == 2
    small = ShuffleNetSpace.small()
    assert small.resolution == 32 and small.num_genes == 10
    assert small.build(small.sample(np.random.default_rng(0)))(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_strings_round_trip_and_read_well() -> None:
    space = ShuffleNetSpace()
    rng = np.random.default_rng(1)
    for _ in range(20):
        genome = space.sample(rng)
        assert space.from_string(space.to_string(genome)) == genome
    assert space.to_string([0, 1, 2, 3, 0, 4] + [0] * 14).startswith("sh3-sh5-sh7-xc3-sh3-id-sh3-")
    assert SHUFFLE_BLOCKS == ("sh3", "sh5", "sh7", "xc3")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sh3-" * 19 + "sh9", "'sh9'"),
        ("sh3-" * 20 + "sh3", "21 '-'-separated layers"),
        ("sh3-" * 4 + "id-" + "sh3-" * 14 + "sh3", "layer 4 cannot be 'id'"),
    ],
)
def test_bad_strings_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        ShuffleNetSpace().from_string(text)


def test_spos_space_has_no_identity() -> None:
    with pytest.raises(InvalidInputError, match="no identity choice"):
        ShuffleNetSpace(identity=False).from_string("sh3-id-" + "sh3-" * 17 + "sh3")


def test_canonical_moves_identities_behind_the_blocks_of_a_stage() -> None:
    space = ShuffleNetSpace()
    ident = space.identity_choice
    genome = (
        [0, ident, 3, ident] + [1, 2, ident, 0] + [0, ident, ident, 2, ident, 1, ident, 3] + [2, ident, 1, 0]
    )
    canon = space.canonical(genome)
    assert canon == tuple(
        [0, 3, ident, ident] + [1, 2, 0, ident] + [0, 2, 1, 3, ident, ident, ident, ident] + [2, 1, 0, ident]
    )
    assert space.canonical(canon) == canon
    assert space.canonical([0, 1, 3, 2] + [0] * 16) != space.canonical([0, 3, 1, 2] + [0] * 16)


@pytest.mark.slow  # builds six networks
def test_canonical_genomes_compute_the_same_function() -> None:
    torch.manual_seed(0)
    space = ShuffleNetSpace(width=0.25, resolution=32)
    rng = np.random.default_rng(2)
    for _ in range(3):
        genome = space.sample(rng)
        canon = space.canonical(genome)
        net, canon_net = space.build(genome).eval(), space.build(canon).eval()
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
    space = ShuffleNetSpace()
    rng = np.random.default_rng(3)
    genomes = [space.sample(rng) for _ in range(200)]
    for column, n in zip(np.array(genomes).T, space.num_choices):
        assert set(column) == set(range(n))
    child = space.crossover(genomes[0], genomes[1], rng)
    assert all(c in (a, b) for a, b, c in zip(genomes[0], genomes[1], child))
    mutant = space.mutate(genomes[0], rng, prob=1.0)
    assert all(m != g for m, g in zip(mutant, genomes[0]))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"width": -1.0}, "width=-1.0"),
        ({"width": 0.1}, "too small"),
        ({"resolution": 8}, "resolution=8"),
        ({"stage_depths": (4, 4, 8)}, "stage_depths"),
        ({"dropout": -0.1}, "dropout=-0.1"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        ShuffleNetSpace(**kwargs)


@pytest.mark.slow  # export + session creation take about a second
@pytest.mark.filterwarnings(
    "ignore::torch.jit.TracerWarning"
)  # channel_shuffle's shape check, a constant here
def test_onnx_export_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    space = ShuffleNetSpace(width=0.25, resolution=32)
    genome = space.from_string("sh3-sh5-id-xc3-sh7-xc3-sh3-id-xc3-sh5-sh7-id-sh3-id-xc3-sh5-sh7-sh3-id-xc3")
    net = space.build(genome).eval()
    x = torch.randn(1, 3, 32, 32)
    buffer = io.BytesIO()
    torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, net(x).numpy(), rtol=1e-4, atol=1e-5)
