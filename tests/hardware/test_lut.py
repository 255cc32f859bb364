"""Latency lookup tables: splitting a layer-wise space, building, saving/reading, predicting, evaluating."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware import LatencyProtocol, LatencyResult, count_macs
from slimforge.hardware.devices import Device, DeviceInfo, DeviceMeasurement, MeasureSettings, PreparedModel
from slimforge.hardware.lut import (
    LUT_FORMAT,
    LutError,
    build_lut,
    read_lut,
    space_from_table,
    split_layerwise,
)
from slimforge.hardware.lut_eval import agreement, evaluate_lut
from slimforge.spaces import get_space

# A tiny CIFAR mbv2: one searchable layer per stage, width 0.35, 32x32 input.
TINY = {"width": 0.35, "resolution": 32, "stage_depths": [1, 1, 1, 1, 1, 1]}
SHAPE = (1, 3, 32, 32)
QUICK = LatencyProtocol(warmup_runs=2, warmup_s=0.05, min_runs=5, min_time_s=0.0, time_cap_s=0.1)


pytestmark = pytest.mark.usefixtures("one_thread")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class ParamsDevice(Device):
    """A deterministic stand-in device: a model's "latency" is its parameter count / 1e4 ms.

    Parameters add up exactly over a network's parts, so a correct split and a correct sum make
    the table's prediction equal the "measured" figure of the whole network.
    """

    kind = "params-test"
    runtime = "none"

    def describe(self) -> DeviceInfo:
        return DeviceInfo(kind=self.kind, name=self.kind, runtime=self.runtime, runtime_version="0")

    def _prepare(self, model, shape, onnx_path, need_hash) -> PreparedModel:
        return PreparedModel(type(model).__name__, shape, module=model)

    def _measure(self, models: Sequence[PreparedModel], settings: MeasureSettings):
        out = []
        for m in models:
            ms = num_params(m.module) / 1e4
            result = LatencyResult(
                runtime="none",
                runtime_version="0",
                threads=settings.threads,
                batch_size=m.input_shape[0],
                input_shape=m.input_shape,
                cpu_model="test",
                cpu_count=1,
                statistic="median",
                latency_ms_median=ms,
                latency_ms_iqr=0.0,
                latency_ms_q1=ms,
                latency_ms_q3=ms,
                latency_ms_min=ms,
                relative_iqr=0.0,
                num_runs=1,
                warmup_runs=0,
                measure_s=0.0,
                stable=True,
                protocol=settings.protocol,
            )
            out.append(
                DeviceMeasurement(
                    device=self.spec,
                    device_info=self.describe(),
                    model=m.label,
                    model_sha256=None,
                    input_shape=m.input_shape,
                    threads=settings.threads,
                    precision="fp32",
                    source="measured",
                    latency_ms=ms,
                    latency_ms_iqr=0.0,
                    stable=True,
                    latency=result,
                    energy_mj=None,
                    energy_source="not requested",
                )
            )
        return out


@pytest.fixture(scope="module")
def tiny_space():
    return get_space("mbv2", **TINY)


@pytest.fixture(scope="module")
def params_table():
    return build_lut("mbv2", ParamsDevice(), space_options=TINY, protocol=QUICK)


# ---- splitting --------------------------------------------------------------------------------


@pytest.mark.slow
def test_split_covers_the_network_exactly(tiny_space) -> None:
    parts = split_layerwise(tiny_space, SHAPE)
    assert len(parts.layers) == tiny_space.num_genes
    assert [len(c) for c in parts.layers] == tiny_space.num_choices
    genome = tiny_space.sample(np.random.default_rng(1))
    net = tiny_space.build(genome)
    pieces = [(parts.stem, parts.stem_shape), (parts.tail, parts.tail_shape)]
    pieces += [
        (parts.layers[i][c], parts.layer_shapes[i])
        for i, c in enumerate(genome)
        if parts.layers[i][c] is not None
    ]
    assert sum(count_macs(m, s) for m, s in pieces) == count_macs(net, SHAPE)
    assert sum(num_params(m) for m, _ in pieces) == num_params(net)


def test_split_records_each_layers_input_shape(tiny_space) -> None:
    parts = split_layerwise(tiny_space, SHAPE)
    assert parts.stem_shape == SHAPE
    x = torch.zeros(SHAPE)
    with torch.no_grad():
        h = parts.stem.eval()(x)
        for i, shape in enumerate(parts.layer_shapes):
            assert tuple(h.shape) == shape
            block = parts.layers[i][0]
            h = block.eval()(h)
    assert tuple(h.shape) == parts.tail_shape
    identity = tiny_space.identity_choice
    for i, n in enumerate(tiny_space.num_choices):
        if n > identity:
            assert parts.layers[i][identity] is None and parts.tokens[i][identity] == "id"
    assert parts.tokens[0][:2] == ("k3e3", "k3e6")


def test_a_cell_space_cannot_be_split() -> None:
    with pytest.raises(InvalidInputError, match="layer-wise space"):
        split_layerwise(get_space("nb201"), SHAPE)


# ---- building, saving, predicting -------------------------------------------------------------


def test_table_has_every_part_and_the_conditions(params_table, tiny_space) -> None:
    t = params_table
    layer_entries = [e for e in t.entries if e.part == "layer"]
    assert len(layer_entries) == sum(tiny_space.num_choices)
    parts = [e.part for e in t.entries]
    assert parts.count("stem") == parts.count("tail") == parts.count("call") == 1
    for key in (
        "format",
        "space",
        "space_options",
        "device",
        "runtime",
        "runtime_version",
        "threads",
        "input_shape",
        "num_classes",
        "protocol",
        "load_average",
        "created_utc",
    ):
        assert key in t.header
    assert t.header["format"] == LUT_FORMAT and t.header["input_shape"] == "1x3x32x32"
    assert t.header["device"] == "params-test" and t.header["threads"] == "1"
    assert t.num_genes == tiny_space.num_genes


def test_prediction_is_the_sum_of_parts(params_table, tiny_space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        genome = tiny_space.sample(rng)
        assert params_table.predict(genome) == pytest.approx(num_params(tiny_space.build(genome)) / 1e4)
        assert params_table.predict(genome, "min") == pytest.approx(params_table.predict(genome))


def test_call_overhead_is_subtracted_for_all_parts_but_one(params_table, tiny_space, tmp_path) -> None:
    path = params_table.save(tmp_path / "lut.csv")
    lines = path.read_text().splitlines()
    (call,) = [i for i, line in enumerate(lines) if line.startswith("call,")]
    fields = lines[call].split(",")
    fields[5] = fields[7] = "0.01"  # latency_ms and latency_ms_min of the no-op model
    lines[call] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    charged = read_lut(path)
    identity = tiny_space.identity_choice
    for genome in (tiny_space.sample(np.random.default_rng(s)) for s in range(4)):
        parts = 2 + sum(c != identity for c in genome)  # stem, tail and every real block
        expected = params_table.predict(genome) - (parts - 1) * 0.01
        assert charged.predict(genome) == pytest.approx(expected)
        assert charged.predict(genome, "min") == pytest.approx(expected)


def test_identity_costs_nothing(params_table, tiny_space) -> None:
    identity = tiny_space.identity_choice
    zero = [e for e in params_table.entries if e.part == "layer" and e.choice == identity]
    assert zero and all(e.latency_ms == 0.0 and e.token == "id" for e in zero)


def test_save_and_read_round_trip(params_table, tmp_path) -> None:
    path = params_table.save(tmp_path / "lut.csv")
    text = path.read_text()
    assert text.startswith("# format: slimforge.lut/1\n") and "\n# device: params-test\n" in text
    back = read_lut(path)
    assert back.entries == params_table.entries
    assert back.header == params_table.header and back.space_options == TINY
    assert space_from_table(back).num_choices == get_space("mbv2", **TINY).num_choices
    assert not list(tmp_path.glob(".*.tmp"))


def test_predict_refuses_genomes_of_another_shape(params_table, tiny_space) -> None:
    with pytest.raises(LutError, match="genes"):
        params_table.predict((0,) * (tiny_space.num_genes + 1))
    with pytest.raises(LutError, match="no entry for choice 9"):
        params_table.predict((9,) + (0,) * (tiny_space.num_genes - 1))
    with pytest.raises(InvalidInputError, match="median, min"):
        params_table.predict((0,) * tiny_space.num_genes, "mean")


def test_table_devices_cannot_build(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("index,arch,latency_ms\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    with pytest.raises(InvalidInputError, match="cannot measure parts"):
        build_lut("mbv2", f"table:{path}", space_options=TINY)


# ---- reading bad files -------------------------------------------------------------------------


def _rewrite(path: Path, old: str, new: str) -> Path:
    path.write_text(path.read_text().replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("latency_ms_min,", "", "missing column.*latency_ms_min"),
        ("# device: params-test\n", "", "missing header line.*# device"),
        ("# format: slimforge.lut/1", "# format: other/9", "format 'other/9'"),
        ("stem,,,stem,1x3x32x32,", "stem,,,stem,1x3x32x32,fast", "data line 3"),
        ("stem,", "trunk,", "part 'trunk'"),
    ],
)
def test_malformed_table_is_a_one_line_error(params_table, tmp_path, old, new, match) -> None:
    path = _rewrite(params_table.save(tmp_path / "lut.csv"), old, new)
    with pytest.raises(LutError, match=match) as info:
        read_lut(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_table_says_how_to_build_one(tmp_path) -> None:
    with pytest.raises(LutError, match="slimforge lut build"):
        read_lut(tmp_path / "absent.csv")


# ---- evaluation --------------------------------------------------------------------------------


def test_agreement_scores() -> None:
    perfect = agreement([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (perfect.within_10pct_share, perfect.spearman_rho, perfect.median_abs_rel_error) == (1.0, 1.0, 0.0)
    off = agreement([1.05, 2.5, 2.0], [1.0, 2.0, 4.0])
    assert off.within_10pct_share == pytest.approx(1 / 3)
    assert off.spearman_rho == pytest.approx(0.5)
    assert off.mean_rel_error == pytest.approx((0.05 + 0.25 - 0.5) / 3)
    with pytest.raises(InvalidInputError):
        agreement([1.0], [1.0])


def test_evaluation_of_an_exact_table(params_table) -> None:
    result = evaluate_lut(params_table, sample=6, seed=0, device=ParamsDevice(), protocol=QUICK, chunk=4)
    assert result.num_models == len(result.rows) == 6
    assert result.lut.within_10pct_share == 1.0 and result.lut.spearman_rho == pytest.approx(1.0)
    assert result.noise.within_10pct_share == 1.0 and result.noise.median_abs_rel_error == 0.0
    assert result.unstable_measurements == 0 and result.device == "params-test"
    space = space_from_table(params_table)
    first = space.sample(np.random.default_rng(0))
    assert result.rows[0].arch == space.to_string(first)
    again = evaluate_lut(params_table, sample=6, seed=0, device=ParamsDevice(), protocol=QUICK)
    assert [r.arch for r in again.rows] == [r.arch for r in result.rows]  # the sample is seeded


def test_evaluation_refuses_another_device(params_table) -> None:
    with pytest.raises(LutError, match="measured on params-test"):
        evaluate_lut(params_table, sample=2, device="local-cpu")


@pytest.mark.slow
def test_real_table_on_onnx_runtime_is_close_to_the_whole_network(tmp_path) -> None:
    table = build_lut("mbv2", "local-cpu", space_options=TINY, protocol=QUICK)
    assert all(e.latency_ms > 0 for e in table.entries if e.token != "id")
    assert table.header["runtime"] == "onnxruntime"
    result = evaluate_lut(table, sample=3, seed=0, protocol=QUICK)
    # Minima are the least load-sensitive figures; the sum of parts must be the right size.
    for row in result.rows:
        assert 0.4 < row.predicted_min_ms / row.measured_min_ms < 2.5
    assert os.path.exists(table.save(tmp_path / "lut.csv"))


class SlowWholeDevice(ParamsDevice):
    """Like ParamsDevice, but a whole network (its classifier is there) measures ``scale`` x its parts + ``offset_ms``.

    Here 0.8 x: a whole network runs 20% *faster* than its parts. It records every whole network's
    parts-sum ("latency" before the change), so a test can see which networks were measured.
    """

    scale, offset_ms = 0.8, 0.0

    def __init__(self) -> None:
        super().__init__()
        self.whole_ms: list[float] = []

    def _measure(self, models, settings):
        out = super()._measure(models, settings)
        whole = [
            any(isinstance(m, nn.Linear) for m in p.module.modules()) and hasattr(p.module, "stem")
            for p in models
        ]
        self.whole_ms += [r.latency_ms for r, w in zip(out, whole) if w]

        def changed(ms: float) -> float:
            return ms * self.scale + self.offset_ms

        return [
            dataclasses.replace(
                r,
                latency_ms=changed(r.latency_ms),
                latency=dataclasses.replace(
                    r.latency,
                    latency_ms_median=changed(r.latency.latency_ms_median),
                    latency_ms_min=changed(r.latency.latency_ms_min),
                ),
            )
            if w
            else r
            for r, w in zip(out, whole)
        ]


class AffineWholeDevice(SlowWholeDevice):
    """A whole network measures 1.2 x its parts + 0.05 ms: an error that grows with size, as on a real CPU."""

    scale, offset_ms = 1.2, 0.05


def test_calibration_scales_sums_to_whole_network_measurements(tmp_path, tiny_space) -> None:
    from slimforge.hardware.lut import calibrate_lut

    device = SlowWholeDevice()
    raw = build_lut("mbv2", device, space_options=TINY, protocol=QUICK)
    genome = tiny_space.sample(np.random.default_rng(3))
    assert raw.scale() == 1.0
    calibrated = calibrate_lut(raw, device, networks=3, protocol=QUICK)
    assert calibrated.scale() == pytest.approx(0.8) and calibrated.scale("min") == pytest.approx(0.8)
    assert calibrated.predict(genome) == pytest.approx(0.8 * raw.predict(genome))
    back = read_lut(calibrated.save(tmp_path / "lut.csv"))
    assert back.predict(genome) == pytest.approx(calibrated.predict(genome))
    again = calibrate_lut(back, device, networks=2, protocol=QUICK)  # from the raw sums, not compounded
    assert again.scale() == pytest.approx(0.8)
    with pytest.raises(InvalidInputError, match="at least one network"):
        calibrate_lut(raw, device, networks=0)


def test_affine_calibration_fits_scale_and_offset_on_networks_spread_over_the_table(
    tmp_path, tiny_space
) -> None:
    from slimforge.hardware.lut import calibrate_lut

    raw = build_lut("mbv2", ParamsDevice(), space_options=TINY, protocol=QUICK)
    device = AffineWholeDevice()
    calibrated = calibrate_lut(raw, device, networks=4, protocol=QUICK, form="affine")
    assert calibrated.header["calibration_form"] == "affine"
    for statistic in ("median", "min"):
        assert calibrated.scale(statistic) == pytest.approx(1.2)
        assert calibrated.offset_ms(statistic) == pytest.approx(0.05)
    genome = tiny_space.sample(np.random.default_rng(3))
    assert calibrated.predict(genome) == pytest.approx(1.2 * raw.predict(genome) + 0.05)
    # the fit spans the table: its cheapest and dearest networks are among the 4 measured
    cheapest, dearest = raw.predict(raw.extreme_genome()), raw.predict(raw.extreme_genome(dearest=True))
    assert len(device.whole_ms) == 4
    assert min(device.whole_ms) == pytest.approx(cheapest) and max(device.whole_ms) == pytest.approx(dearest)
    assert cheapest < raw.predict(genome) < dearest
    back = read_lut(calibrated.save(tmp_path / "lut.csv"))
    assert back.predict(genome) == pytest.approx(calibrated.predict(genome))
    again = calibrate_lut(
        back, SlowWholeDevice(), networks=2, protocol=QUICK
    )  # scale form, from the raw sums
    assert again.scale() == pytest.approx(0.8) and again.offset_ms() == 0.0
    assert "calibration_offset_ms_median" not in again.header


def test_affine_calibration_refuses_too_few_networks_and_unknown_forms(params_table) -> None:
    from slimforge.hardware.lut import calibrate_lut

    with pytest.raises(InvalidInputError, match="at least 3 networks for an affine fit, got 2"):
        calibrate_lut(params_table, ParamsDevice(), networks=2, form="affine")
    with pytest.raises(InvalidInputError, match="calibration form 'linear' is not one of scale, affine"):
        calibrate_lut(params_table, ParamsDevice(), networks=3, form="linear")
