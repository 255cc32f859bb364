"""INT8 post-training quantization through ONNX Runtime, sensitivity, and the ONNX layer mapping."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from slimforge.compress.quantize import check_calibration, int8_sensitivity, quantize_onnx_int8
from slimforge.compress.quantize._int8 import preprocessed_weight_layers, torch_to_onnx_layers
from slimforge.data import calibration_batch, load_dataset, sample_batch
from slimforge.errors import InputShapeError
from slimforge.hardware import export_onnx
from slimforge.training import TrainSettings, onnx_accuracy, train_classifier
from slimforge.zoo import create_model

SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny ResNet-20 trained on 8x8 digits, its float ONNX file, and the data."""
    splits = load_dataset("digits", image_size=8)
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, width=0.25)
    train_classifier(model, splits.train.subset(np.arange(512)), TrainSettings(epochs=5, batch_size=32, lr=0.1))
    path = export_onnx(model, SHAPE, tmp_path_factory.mktemp("int8") / "float.onnx")
    return model, path, splits


def _predictions(path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.array([session.run(None, {"input": images[i : i + 1]})[0].argmax() for i in range(len(images))])


@pytest.mark.slow
def test_int8_file_has_int8_weights_and_agrees_with_float(trained, tmp_path):
    _, float_path, splits = trained
    calib = calibration_batch(splits.train, 64, seed=0).numpy()
    out = quantize_onnx_int8(float_path, tmp_path / "int8.onnx", calib)
    graph = onnx.load(str(out)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [i for i in graph.initializer if numpy_helper.to_array(i).dtype == np.int8]
    assert len(int8_weights) >= 19  # every conv's weights (BN folded) and the classifier
    images = sample_batch(splits.val, 100, seed=1)[0].numpy()
    agree = float(np.mean(_predictions(out, images) == _predictions(float_path, images)))
    assert agree >= 0.9
    assert abs(onnx_accuracy(out, splits.val) - onnx_accuracy(float_path, splits.val)) < 5.0


def test_calibration_of_the_wrong_shape_is_one_clear_error(trained, tmp_path):
    _, float_path, _ = trained
    with pytest.raises(InputShapeError, match=r"\(4, 3, 9, 9\).*\(N, 3, 8, 8\)"):
        quantize_onnx_int8(float_path, tmp_path / "x.onnx", np.zeros((4, 3, 9, 9), np.float32))
    with pytest.raises(InputShapeError):
        check_calibration(np.zeros((4, 3, 8, 8), np.uint8), SHAPE)
    assert check_calibration(torch.zeros(2, 3, 8, 8), SHAPE).dtype == np.float32


def test_sensitivity_covers_every_layer_and_leaves_the_model_alone(trained):
    model, _, splits = trained
    state = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = sample_batch(splits.val, 64, seed=0)
    rows = int8_sensitivity(model, calibration_batch(splits.train, 32), images, labels)
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert sorted(r.layer for r in rows) == sorted(names)
    kls = [r.output_kl for r in rows]
    assert kls == sorted(kls, reverse=True) and kls[0] > 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_every_torch_layer_maps_to_its_onnx_node(trained):
    model, float_path, _ = trained
    mapping = torch_to_onnx_layers(model, SHAPE, preprocessed_weight_layers(float_path))
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert sorted(mapping) == sorted(names)
    assert len(set(mapping.values())) == len(names)


@pytest.mark.slow
def test_compacting_names_keeps_outputs_and_shrinks_the_file(trained, tmp_path):
    import shutil

    import onnxruntime as ort

    from slimforge.compress.recipe import compact_onnx

    _, float_path, splits = trained
    calib = calibration_batch(splits.train, 16, seed=0).numpy()
    original = quantize_onnx_int8(float_path, tmp_path / "int8.onnx", calib)
    compacted = shutil.copyfile(original, tmp_path / "compact.onnx")
    size = compact_onnx(compacted)
    assert size < 0.9 * original.stat().st_size
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    a = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(compacted), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.array_equal(a, b)
    graph = onnx.load(str(compacted)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["output"]
