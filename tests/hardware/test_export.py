"""slimforge export: every format converts a tiny network and agrees with it; bad input is one line, exit 2, no file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.cli import main
from slimforge.errors import InvalidInputError, MissingDependencyError
from slimforge.hardware import export_onnx
from slimforge.hardware.export import EXPORT_RECORD, EXPORTERS, ExportError, ExportResult, export_model
from slimforge.hardware.runtimes import OPTIONAL, OptionalPackage, available
from slimforge.testing.devices import tiny_net

SHAPE = (1, 3, 16, 16)
#: the converter each format needs (None: a core dependency).
CONVERTER = {
    "onnx": None,
    "torchscript": None,
    "tflite": "litert-torch",
    "openvino": "openvino",
    "executorch": "executorch",
    "rknn": "rknn-toolkit2",
}
INT8_QUANTIZER = {"onnx": None, "tflite": "ai-edge-quantizer", "openvino": "nncf", "executorch": "executorch"}


pytestmark = pytest.mark.usefixtures("one_thread")


def skip_unless(distribution: str | None) -> None:
    if distribution is not None and not available(distribution):
        pytest.skip(f"{distribution} is not installed here")


def images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SHAPE[1:])).astype(np.float32)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_the_registry_holds_every_format() -> None:
    assert EXPORTERS.list() == sorted(CONVERTER)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(CONVERTER))
def test_fp32_export_agrees_with_pytorch(fmt, tmp_path) -> None:
    skip_unless(CONVERTER[fmt])
    if fmt == "rknn":
        pytest.skip("rknn-toolkit2 runs in its own environment (see BENCHMARKS.md, issue 20)")
    model = tiny_net()
    labels = np.arange(24) % 10
    result = export_model(model, fmt, tmp_path, input_shape=SHAPE, check_images=images(), check_labels=labels)
    assert result.checked and result.passed
    assert result.top1_agreement_pct == 100.0 and result.max_abs_diff < 1e-4
    assert result.reference == "PyTorch" and result.num_check_images == 24 and result.top1_pct is not None
    assert Path(result.path).is_file() and Path(result.path).suffix == EXPORTERS.get(fmt).suffix
    assert result.size_bytes == sum(Path(f).stat().st_size for f in result.files)
    record = json.loads((tmp_path / EXPORT_RECORD).read_text())
    assert ExportResult.from_dict(record) == result
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert not model.training  # given back in eval mode, as it came


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(INT8_QUANTIZER))
def test_int8_export_goes_through_the_formats_own_quantizer(fmt, tmp_path) -> None:
    skip_unless(CONVERTER[fmt])
    skip_unless(INT8_QUANTIZER[fmt])
    result = export_model(
        tiny_net(), fmt, tmp_path, input_shape=SHAPE, precision="int8",
        calibration_images=images(32, seed=1), check_images=images(), min_agreement_pct=50,
    )  # fmt: skip
    assert result.precision == "int8" and result.quantizer and result.checked
    assert 0 < result.max_abs_diff < 1.0  # quantized: close to the float model, not equal to it
    assert result.top1_agreement_pct >= 50


@pytest.mark.slow
def test_an_onnx_file_exports_and_is_checked_against_onnx_runtime(tmp_path) -> None:
    source = export_onnx(tiny_net(), SHAPE, tmp_path / "in.onnx")
    result = export_model(source, "onnx", tmp_path / "out", check_images=images())
    assert result.source == "onnx" and result.reference == "ONNX Runtime on in.onnx"
    assert result.top1_agreement_pct == 100.0 and result.input_shape == SHAPE


def test_without_data_the_check_runs_on_seeded_noise_and_says_so(tmp_path) -> None:
    result = export_model(tiny_net(), "torchscript", tmp_path, input_shape=SHAPE)
    assert result.checked and "noise" in result.check_data and result.top1_pct is None


class _Collapsing(nn.Module):
    """Converts fine, but its export differs from it: the eager model adds noise the trace freezes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + 10 * torch.randn(x.shape[0], 10)


def test_an_export_below_the_threshold_fails_with_its_figures_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportError) as err:
        export_model(_Collapsing(), "torchscript", out, input_shape=SHAPE, check_images=images(64))
    message = str(err.value)
    assert "agrees with PyTorch on only" in message and "threshold 99%" in message and "\n" not in message
    assert err.value.result is not None and not err.value.result.passed
    assert files_in(out) == []


class _DataDependent(nn.Module):
    """A branch on a tensor's value: torch.export (LiteRT, ExecuTorch) rejects it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x.mean((2, 3))
        return -x.mean((2, 3))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["executorch", "tflite"])
def test_a_model_the_converter_rejects_is_one_line_and_leaves_nothing(fmt, tmp_path) -> None:
    skip_unless(CONVERTER[fmt])
    out = tmp_path / "out"
    with pytest.raises(
        ExportError,
        match=f"could not convert _DataDependent to {'LiteRT' if fmt == 'tflite' else 'ExecuTorch'}",
    ) as err:
        export_model(_DataDependent(), fmt, out, input_shape=SHAPE, check_images=images(4))
    assert "\n" not in str(err.value)
    assert files_in(out) == []


def test_formats_that_need_pytorch_refuse_an_onnx_file(tmp_path) -> None:
    source = export_onnx(tiny_net(), SHAPE, tmp_path / "in.onnx")
    with pytest.raises(InvalidInputError, match="converts a PyTorch model"):
        export_model(source, "torchscript", tmp_path / "out")
    with pytest.raises(InvalidInputError, match="no INT8 quantizer"):
        export_model(tiny_net(), "torchscript", tmp_path / "out", input_shape=SHAPE, precision="int8",
                     calibration_images=images(4))  # fmt: skip
    assert files_in(tmp_path / "out") == []


def test_a_missing_converter_says_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(
        OPTIONAL, "openvino", OptionalPackage("slimforge_no_such_module", "openvino", "openvino", "OpenVINO")
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'slimforge\[openvino\]'"):
        export_model(tiny_net(), "openvino", tmp_path / "out", input_shape=SHAPE)
    assert files_in(tmp_path / "out") == []


# ---- the command line --------------------------------------------------------------------------


def test_cli_exports_with_json(tmp_path, capsys) -> None:
    assert main(["export", "resnet20", "--format", "onnx", "--out", str(tmp_path), "--json"]) == 0
    result = ExportResult.from_dict(json.loads(capsys.readouterr().out))
    assert result.passed and result.input_shape == (1, 3, 32, 32) and (tmp_path / "model.onnx").is_file()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--format", "tfl"], "unknown export format 'tfl'; did you mean tflite"),
        (["--format", "onnx", "--int8"], "--int8 calibrates on real images: give --data"),
        (["--format", "onnx", "--min-agreement", "most"], "--min-agreement must be a percentage"),
        (["--format", "onnx", "--rknn-target", "rk3566"], "are for --format rknn"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_file(argv, match, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["export", "resnet20", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1
    assert files_in(out) == []


def test_cli_runtime_not_installed_is_one_line_exit_2_and_no_file(tmp_path, capsys, monkeypatch) -> None:
    # rknn-toolkit2 cannot be installed beside torch 2.13 (BENCHMARKS.md): absent here, or made absent.
    monkeypatch.setitem(
        OPTIONAL,
        "rknn-toolkit2",
        OptionalPackage("slimforge_no_such_module", "rknn-toolkit2", "rknn", "RKNN conversion"),
    )
    out = tmp_path / "out"
    assert main(["export", "resnet20", "--format", "rknn", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'slimforge[rknn]'" in err and err.count("\n") == 1
    assert not out.exists()
