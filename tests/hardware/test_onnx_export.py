"""ONNX export: atomic write, eval mode, errors; every zoo model runs in ONNX Runtime like in PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from slimforge.errors import InputShapeError
from slimforge.hardware import OnnxExportError, export_onnx
from slimforge.zoo import create_model, list_models


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(2)
    )


def run_ort(path, x: torch.Tensor) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def test_export_writes_a_valid_opset_17_file_atomically(tmp_path) -> None:
    model = tiny()
    model(torch.zeros(1, 3, 6, 6))  # materialise the lazy layer
    model.train()
    path = export_onnx(model, "1x3x6x6", tmp_path / "sub" / "tiny.onnx")
    assert path == tmp_path / "sub" / "tiny.onnx"
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.onnx"]  # no temporary left behind
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}
    assert model.training  # given back in its own mode
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        expected = model.eval()(x).numpy()  # exported in eval mode: dropout off, BN running stats
    np.testing.assert_allclose(run_ort(path, x), expected, atol=1e-5)


def test_export_replaces_an_existing_file(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    path.write_text("old")
    export_onnx(nn.Conv2d(3, 2, 1), (1, 3, 4, 4), path)
    onnx.checker.check_model(onnx.load(str(path)))


def test_wrong_shape_raises_and_writes_nothing(tmp_path) -> None:
    with pytest.raises(InputShapeError, match="channels"):
        export_onnx(nn.Conv2d(3, 2, 1), (1, 4, 4, 4), tmp_path / "m.onnx")
    with pytest.raises(InputShapeError, match="positive integers"):
        export_onnx(nn.Conv2d(3, 2, 1), "1x3xAx4", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_operator_raises_one_clear_error(tmp_path, capfd) -> None:
    class Svd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.svd(x)[0]

    with pytest.raises(OnnxExportError, match="linalg_svd"):
        export_onnx(Svd(), (1, 2, 3, 3), tmp_path / "svd.onnx")
    assert list(tmp_path.iterdir()) == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the exporter's own dump of the graph is not shown


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_zoo_model_runs_in_onnx_runtime_like_in_pytorch(name, tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    path = export_onnx(model, x.shape, tmp_path / f"{name}.onnx")
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_ort(path, x)
    assert got.shape == expected.shape == (1, 10)
    assert float(np.max(np.abs(got - expected))) <= 1e-4
