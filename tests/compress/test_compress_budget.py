"""Budgets: KEY=VALUE, bare values read as the search's default key, the smallest reachable budget."""

from __future__ import annotations

import pytest

from slimforge.compress import parse_budget
from slimforge.errors import InvalidInputError, UnknownNameError


def test_budget_keys_read_and_bound():
    b = parse_budget("macs=0.5", ("macs", "bytes"))
    assert (b.metric, b.kind, b.value, b.text) == ("macs", "fraction", 0.5, "macs=0.5")
    assert b.bound(1000.0) == 500.0
    assert parse_budget("latency_ms=2.5", ("latency_ms",)).bound(99.0) == 2.5
    relative = parse_budget("latency=0.7", ("latency",))
    assert (relative.metric, relative.kind, relative.bound(2.0)) == ("latency_ms", "fraction", 1.4)
    assert parse_budget(" size = 0.25 ", ("size",)).metric == "bytes"
    bits = parse_budget("bits=4", ("bits",))
    assert bits.bound(1234.0) == 1234.0 and type(b).from_json(b.to_json()) == b


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("macs", InvalidInputError, "KEY=VALUE"),
        ("flops=0.5", UnknownNameError, "unknown budget key 'flops'"),
        ("mac=0.5", UnknownNameError, "did you mean macs"),
        ("macs=half", InvalidInputError, "not a finite number"),
        ("macs=nan", InvalidInputError, "not a finite number"),
        ("macs=1.5", InvalidInputError, r"must be in \(0, 1\]"),
        ("macs=0", InvalidInputError, r"must be in \(0, 1\]"),
        ("latency_ms=-1", InvalidInputError, "must be in"),
        ("latency=1.2", InvalidInputError, r"must be in \(0, 1\]"),
        ("bits=9", InvalidInputError, r"must be in \[2, 8\]"),
        ("bits=4.5", InvalidInputError, "whole number"),
        ("bitops=0.3", InvalidInputError, "does not take 'bitops'"),
        ("macs=0.5,bytes=9", InvalidInputError, "give one"),
    ],
)
def test_malformed_budgets_are_one_line_errors(text, error, match):
    with pytest.raises(error, match=match) as info:
        parse_budget(text, ("macs", "latency", "latency_ms", "bytes", "size", "bits"))
    assert "\n" not in str(info.value)


def test_a_bare_number_is_the_default_key_and_ms_is_an_absolute_latency():
    keys = ("macs", "latency", "latency_ms", "bytes", "size")
    bare = parse_budget("0.7", keys, default_key="latency")
    assert (bare.key, bare.metric, bare.kind, bare.value) == ("latency", "latency_ms", "fraction", 0.7)
    ms = parse_budget(" 2.5ms ", keys, default_key="latency")
    assert (ms.key, ms.value, ms.bound(99.0)) == ("latency_ms", 2.5, 2.5)
    assert parse_budget("0.25", ("bytes", "size", "bits"), default_key="size").key == "size"
    with pytest.raises(InvalidInputError, match="KEY=VALUE"):
        parse_budget("0.7", keys)  # no default: a bare number is not guessed
    with pytest.raises(InvalidInputError, match=r"latency must be in \(0, 1\]"):
        parse_budget("1.5", keys, default_key="latency")


def test_the_smallest_reachable_budget_is_rounded_up_in_the_budget_s_own_key():
    macs = parse_budget("macs=0.1", ("macs",))
    text = macs.reachable(123.0, 1000.0)
    assert text == "macs=0.123"
    value = parse_budget(text, ("macs",)).bound(1000.0)
    assert value >= 123.0
    assert parse_budget("macs=0.1", ("macs",)).reachable(1.0, 3.0) == "macs=0.3334"  # up, never below
    assert parse_budget("latency_ms=1", ("latency_ms",)).reachable(1.23456, 1.0) == "latency_ms=1.235"
    assert parse_budget("bits=2", ("bits",)).reachable(6714.2, 1.0) == "bytes=6715"
