"""Recipe parsing and stage validation: bad recipes fail in one line before any work."""

from __future__ import annotations

import pytest

from slimforge.compress.recipe import QUANTIZE_MODES, STAGES, parse_recipe, parse_stages
from slimforge.errors import InvalidInputError, UnknownNameError


def test_parse_recipe_splits_names_args_and_options():
    specs = parse_recipe("prune:l1:0.5:steps=2:@stages.8=0.7, distill:teacher=self:T=3 ,quantize:int8")
    assert [s.name for s in specs] == ["prune", "distill", "quantize"]
    assert specs[0].args == ("l1", "0.5")
    assert specs[0].option("steps") == "2"
    assert specs[0].option("@stages.8") == "0.7"
    assert specs[1].option("T") == "3" and specs[1].option("missing", "x") == "x"
    assert specs[2].args == ("int8",)


@pytest.mark.parametrize(
    "recipe",
    ["", "prune:l1:0.5,,quantize:int8", "prune:l1::0.5", "distill:teacher=:T=2", "prune:steps=2:l1"],
)
def test_malformed_recipes_raise(recipe):
    with pytest.raises(InvalidInputError):
        parse_recipe(recipe)


def test_every_registered_stage_parses_a_typical_example():
    examples = {
        "prune": "prune:l2:0.25",
        "sparsify": "sparsify:0.8:scope=global",
        "lowrank": "lowrank:tucker:ratio=0.5",
        "distill": "distill:teacher=self:alpha=0.5",
        "finetune": "finetune:epochs=2",
        "huffman": "huffman",
        "quantize": "quantize:int8:method=entropy",
    }
    assert set(examples) == set(STAGES.list())
    for name in STAGES:
        (stage,) = parse_stages(examples[name])
        assert stage.text == examples[name]
    for mode in QUANTIZE_MODES:
        text = {"kmeans": "quantize:kmeans:4"}.get(mode, f"quantize:{mode}")
        assert parse_stages(text)[0].kind == f"quantize:{mode}"


@pytest.mark.parametrize("ratio", ["0", "1", "1.5", "-0.2", "half"])
def test_ratio_outside_open_interval_is_rejected(ratio):
    with pytest.raises(InvalidInputError, match="prune:l1"):
        parse_stages(f"prune:l1:{ratio}")
    with pytest.raises(InvalidInputError, match="sparsify"):
        parse_stages(f"sparsify:{ratio}")


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            "sparsify:0.5:scope=all",
            "recipe stage 'sparsify:0.5:scope=all': scope='all' must be layer or global",
        ),
        (
            "quantize:binary:float_layers=first",
            "recipe stage 'quantize:binary:float_layers=first': float_layers='first' must be first_last or none",
        ),
    ],
)
def test_choice_option_outside_its_choices_is_rejected(recipe, message):
    with pytest.raises(InvalidInputError) as info:
        parse_stages(recipe)
    assert str(info.value) == message
    assert parse_stages(recipe.rsplit(":", 1)[0])  # the default choice parses


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownNameError, match="quantize"):
        parse_stages("quantise:int8")
    with pytest.raises(UnknownNameError, match="l1"):
        parse_stages("prune:l11:0.5")
    with pytest.raises(UnknownNameError, match="int8"):
        parse_stages("quantize:int9")
    with pytest.raises(InvalidInputError, match="unknown option 'stepz'"):
        parse_stages("prune:l1:0.5:stepz=2")


def test_stage_order_rules():
    with pytest.raises(InvalidInputError, match="must be the last stage"):
        parse_stages("quantize:int8,prune:l1:0.5")
    with pytest.raises(InvalidInputError, match="changes layer shapes"):
        parse_stages("sparsify:0.5,prune:l1:0.5")
    assert len(parse_stages("sparsify:0.5,quantize:kmeans:4,huffman")) == 3
    assert len(parse_stages("prune:l1:0.5,quantize:int8,huffman")) == 3


@pytest.mark.parametrize(
    "recipe",
    [
        "quantize:kmeans:1",
        "quantize:kmeans:9",
        "quantize:kmeans",
        "lowrank:svd:energy=0.9:ratio=0.5",
        "lowrank:svd:ratio=1",
        "distill:T=0",
        "quantize:int8:method=best",
        "quantize:binary:scale=maybe",
    ],
)
def test_out_of_range_options_are_rejected(recipe):
    with pytest.raises(InvalidInputError):
        parse_stages(recipe)
