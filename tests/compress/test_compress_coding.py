"""Deep Compression storage: real, decodable bytes for sparse, shared and Huffman-coded weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from slimforge.compress.coding import has_packable_weights, huffman_code_lengths, pack_state, unpack_state
from slimforge.compress.prune import MaskHook, magnitude_masks
from slimforge.compress.quantize import share_weights
from slimforge.errors import ModelFileError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16 * 4, 10))


def _same(state: dict, model: nn.Module) -> bool:
    return all(torch.equal(state[k].to(v.dtype), v) for k, v in model.state_dict().items())


def test_huffman_lengths_are_optimal_on_the_textbook_example():
    # Cormen et al., Introduction to Algorithms, section 16.3: a:45 b:13 c:12 d:16 e:9 f:5.
    lengths = huffman_code_lengths({0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5})
    assert lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    assert math.isclose(sum(2.0**-n for n in lengths.values()), 1.0)  # a full prefix code
    assert huffman_code_lengths({7: 3}) == {7: 1}


def test_dense_model_round_trips_and_costs_about_its_float_bytes():
    model = _net()
    blob = pack_state(model)
    assert _same(unpack_state(blob), model)
    raw = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert raw <= len(blob) < raw * 1.05
    assert not has_packable_weights(model)


def test_each_deep_compression_stage_is_smaller_and_still_decodes():
    model = _net()
    dense = len(pack_state(model))
    MaskHook(magnitude_masks(model, 0.8)).attach(model)
    pruned = pack_state(model)
    assert _same(unpack_state(pruned), model)
    share_weights(model, 3)
    shared = pack_state(model)
    coded = pack_state(model, huffman=True)
    for blob in (shared, coded):
        assert _same(unpack_state(blob), model)
    assert dense > len(pruned) > len(shared) > len(coded)
    assert has_packable_weights(model)


def test_long_gaps_use_filler_entries():
    layer = nn.Linear(1000, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, [3, 700, 999]] = torch.tensor([1.5, -2.0, 0.25])
    model = nn.Sequential(layer)
    state = unpack_state(pack_state(model, huffman=True))
    assert torch.equal(state["0.weight"], layer.weight)


def test_per_channel_codebooks_store_binary_weights_in_about_one_bit():
    layer = nn.Conv2d(32, 64, 3, bias=False)
    with torch.no_grad():
        scale = torch.rand(64, 1, 1, 1) + 0.5
        layer.weight.copy_(torch.where(torch.rand_like(layer.weight) > 0.5, 1.0, -1.0) * scale)
    blob = pack_state(nn.Sequential(layer))
    assert torch.equal(unpack_state(blob)["0.weight"], layer.weight)
    assert len(blob) < layer.weight.numel() / 8 * 1.2 + 64 * 2 * 4 + 100


def test_corrupt_container_is_rejected():
    with pytest.raises(ModelFileError):
        unpack_state(b"not a container")
