"""Costs per runtime: lookup tables and latency predictors say which runtime they were measured with,
and a caller that needs another runtime's figures is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimforge.errors import ModelFileError
from slimforge.hardware.lut import LutError, read_lut
from slimforge.hardware.predictors import create_predictor, load_predictor


def write_lut(path: Path, runtime: str) -> Path:
    header = {
        "format": "slimforge.lut/1",
        "space": "mbv2",
        "space_options": "{}",
        "device": f"local-{runtime}",
        "runtime": runtime,
        "runtime_version": "1.0",
        "threads": "1",
        "input_shape": "1x3x32x32",
        "num_classes": "10",
    }
    rows = [
        "part,layer,choice,token,input_shape,latency_ms,latency_ms_iqr,latency_ms_min,num_runs,stable",
        "stem,,,stem,1x3x32x32,0.4,0.01,0.39,100,true",
        "tail,,,tail,1x64x4x4,0.1,0.01,0.09,100,true",
        "layer,0,0,k3e3,1x16x32x32,0.5,0.02,0.48,100,true",
        "layer,0,1,id,1x16x32x32,0.0,0.0,0.0,0,true",
    ]
    path.write_text("".join(f"# {k}: {v}\n" for k, v in header.items()) + "\n".join(rows) + "\n")
    return path


def test_a_lut_answers_for_its_own_runtime(tmp_path) -> None:
    table = read_lut(write_lut(tmp_path / "litert.csv", "litert"), runtime="litert")
    assert table.runtime == "litert" and table.predict([0]) == pytest.approx(0.4 + 0.1 + 0.5)
    assert read_lut(tmp_path / "litert.csv").runtime == "litert"  # no runtime asked: any is read


def test_a_lut_of_another_runtime_is_refused_in_one_line(tmp_path) -> None:
    path = write_lut(tmp_path / "ort.csv", "onnxruntime")
    with pytest.raises(LutError) as err:
        read_lut(path, runtime="litert")
    message = str(err.value)
    assert "measured with onnxruntime 1.0 on local-onnxruntime, not with litert" in message
    assert "slimforge lut build --device local-litert" in message and "\n" not in message


def fitted(seed: int = 0):
    rng = np.random.default_rng(seed)
    genomes = rng.integers(0, 5, size=(12, 6))
    return create_predictor("ridge", seed=seed).fit(genomes, 1.0 + genomes.sum(1) * 0.1), genomes


def test_a_predictor_keeps_its_runtime_and_is_refused_for_another(tmp_path) -> None:
    predictor, genomes = fitted()
    predictor.save(tmp_path / "p.json", runtime="litert")
    loaded = load_predictor(tmp_path / "p.json", runtime="litert")
    assert loaded.runtime == "litert"
    assert np.allclose(loaded.predict(genomes), predictor.predict(genomes))
    with pytest.raises(ModelFileError, match="fitted on latencies of litert, not onnxruntime") as err:
        load_predictor(tmp_path / "p.json", runtime="onnxruntime")
    assert "\n" not in str(err.value)


def test_a_predictor_saved_without_a_runtime_loads_unless_one_is_required(tmp_path) -> None:
    predictor, _ = fitted()
    predictor.save(tmp_path / "p.json")
    assert load_predictor(tmp_path / "p.json").runtime is None
    with pytest.raises(ModelFileError, match="an unrecorded runtime"):
        load_predictor(tmp_path / "p.json", runtime="litert")
