"""Tests of slimforge.hardware.tables: reading and checking device tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimforge.errors import SlimforgeError
from slimforge.hardware.predictors import isomorphism_key
from slimforge.hardware.tables import DeviceTable, DeviceTableError, read_device_table

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nb201"
ORT = DATA / "device_pi5_onnxruntime.csv"
needs_data = pytest.mark.skipif(not ORT.exists(), reason=f"reference data not found at {DATA}")

A0 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
A1 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
A2 = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"


def _write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _good(tmp_path: Path) -> Path:
    return _write(
        tmp_path,
        f"index,arch,latency_ms,energy_mj\n0,{A0},10.5,16.1\n1,{A1},1.8,2.6\n2,{A2},0.5,0.9\n",
    )


def test_reads_columns_as_arrays(tmp_path):
    table = read_device_table(_good(tmp_path))
    assert isinstance(table, DeviceTable)
    assert len(table) == 3
    assert table.index.dtype == np.int64 and table.index.tolist() == [0, 1, 2]
    assert table.latency_ms.dtype == np.float64 and table.latency_ms.tolist() == [10.5, 1.8, 0.5]
    assert table.energy_mj is not None and table.energy_mj.tolist() == [16.1, 2.6, 0.9]
    assert table.genomes.shape == (3, 6)
    assert table.genomes[0].tolist() == [3, 3, 4, 1, 3, 1]
    assert list(table.arch) == [A0, A1, A2]


def test_lookup_by_string_and_genome(tmp_path):
    table = read_device_table(_good(tmp_path))
    assert table.latency_of(A1) == 1.8
    assert table.latency_of((3, 3, 4, 1, 3, 1)) == 10.5
    assert table.row(A2) == 2
    with pytest.raises(DeviceTableError, match="no row for architecture"):
        table.row((3, 3, 3, 3, 3, 3))


def test_energy_is_optional(tmp_path):
    path = _write(tmp_path, f"arch,latency_ms,index\n{A0},10.5,7\n")
    table = read_device_table(path)
    assert table.energy_mj is None
    assert table.index.tolist() == [7]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("index,arch,latency_ms\n", "no rows"),
        (f"index,arch\n0,{A0}\n", "missing column(s) latency_ms"),
        (f"idx,arch,latency_ms\n0,{A0},1.0\n", "missing column(s) index"),
        (f"index,arch,latency_ms\n0,{A0},fast\n", "latency_ms 'fast' is not a number"),
        (f"index,arch,latency_ms\nzero,{A0},1.0\n", "index 'zero' is not an integer"),
        (f"index,arch,latency_ms\n0,{A0},-1.0\n", "must be a positive finite number"),
        (f"index,arch,latency_ms\n0,{A0},nan\n", "must be a positive finite number"),
        (f"index,arch,latency_ms,energy_mj\n0,{A0},1.0,lots\n", "energy_mj 'lots' is not a number"),
        (f"index,arch,latency_ms\n0,{A0},1.0\n0,{A1},2.0\n", "duplicate index 0"),
        (f"index,arch,latency_ms\n0,{A0},1.0\n1,{A0},2.0\n", "duplicate architecture"),
        ("index,arch,latency_ms\n0,,1.0\n", "arch field is empty"),
        ("index,arch,latency_ms\n0,|conv~0|+|x~0|,1.0\n", "unparseable architecture"),
        (f"index,arch,latency_ms\n0,{A0}\n", "latency_ms field is empty"),
    ],
)
def test_bad_tables_raise_one_line_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text, name="bad_table.csv")
    with pytest.raises(DeviceTableError) as info:
        read_device_table(path)
    text = str(info.value)
    assert message in text
    assert "bad_table.csv" in text
    assert "\n" not in text
    assert isinstance(info.value, SlimforgeError)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DeviceTableError, match="no such file"):
        read_device_table(tmp_path / "absent.csv")


def test_timed_genomes_pick_the_lowest_index_of_each_class(tmp_path):
    # (3,3,0,1,4,3) and (3,0,1,1,4,3) compute the same function: skip(conv3(x)) == conv3(x).
    a = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    b = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    path = _write(tmp_path, f"index,arch,latency_ms\n5,{a},7.0\n3,{b},7.0\n9,{A0},10.0\n")
    table = read_device_table(path)
    timed = table.timed_genomes()
    assert timed[0].tolist() == table.genomes[1].tolist()  # index 3 < 5
    assert timed[1].tolist() == table.genomes[1].tolist()
    assert timed[2].tolist() == table.genomes[2].tolist()


def test_shares_class_measurements_tells_benchmark_tables_apart(tmp_path):
    a = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    b = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    once = read_device_table(
        _write(tmp_path, f"index,arch,latency_ms\n0,{a},7.0\n1,{b},7.0\n2,{A0},9.0\n", "a.csv")
    )
    each = read_device_table(
        _write(tmp_path, f"index,arch,latency_ms\n0,{a},7.0\n1,{b},7.9\n2,{A0},9.0\n", "b.csv")
    )
    assert once.shares_class_measurements()
    assert not each.shares_class_measurements()
    assert not read_device_table(_good(tmp_path)).shares_class_measurements()  # no class with 2 rows


@pytest.fixture(scope="module")
def ort_table() -> DeviceTable:
    return read_device_table(ORT)


@needs_data
@pytest.mark.slow
def test_real_table_reads_whole(ort_table):
    assert len(ort_table) == 15625
    assert sorted(ort_table.index.tolist()) == list(range(15625))
    assert np.all(ort_table.latency_ms > 0) and ort_table.energy_mj is not None
    assert len({tuple(g) for g in ort_table.genomes.tolist()}) == 15625
    row = 1234
    assert ort_table.latency_of(ort_table.arch[row]) == ort_table.latency_ms[row]


@needs_data
@pytest.mark.slow
def test_real_table_holds_one_latency_per_isomorphism_class(ort_table):
    # The property timed_genomes() relies on: the benchmark measured one network per class.
    by_class: dict[str, set[float]] = {}
    for genome, latency in zip(ort_table.genomes.tolist(), ort_table.latency_ms.tolist()):
        by_class.setdefault(isomorphism_key(genome), set()).add(latency)
    assert len(by_class) == 6466
    assert all(len(values) == 1 for values in by_class.values())
    timed = ort_table.timed_genomes()
    assert len({tuple(g) for g in timed.tolist()}) == 6466
    same = [
        isomorphism_key(a) == isomorphism_key(b) for a, b in zip(timed.tolist(), ort_table.genomes.tolist())
    ]
    assert all(same)
