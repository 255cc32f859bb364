"""The wrapped tools used directly, as a user without slimforge would: the side-by-side rows.

- torch-pruning: its pruner with the same criterion and ratio on the original model, the final
  classifier ignored (as its README does), no finetuning and no sparsity training.
- ONNX Runtime: ``quantize_static`` with its defaults (QDQ, per-tensor weights, int8 activations,
  MinMax, no pre-processing) on the original float ONNX, with the same calibration images.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slimforge.compress.recipe._measure import StageResult, measure_stage
from slimforge.compress.recipe._stage import Stage, StageContext

__all__ = ["direct_int8", "direct_prune"]


def direct_prune(stage: Stage, ctx: StageContext, out_dir: Path, *, index: int) -> StageResult:
    """torch-pruning's ``BasePruner`` with the stage's criterion and ratio, no finetuning."""
    import torch_pruning as tp

    model = copy.deepcopy(ctx.original).eval()
    importance = {
        "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "bn": tp.importance.BNScaleImportance,
        "taylor": tp.importance.GroupTaylorImportance,
        "random": tp.importance.RandomImportance,
    }[stage.criterion]()
    num_classes = ctx.splits.num_classes
    ignored = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    example = torch.zeros(ctx.input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.BasePruner(
            model,
            example,
            importance,
            pruning_ratio=stage.ratio,
            ignored_layers=ignored,
            global_pruning=stage.global_pruning,
        )
        if stage.criterion == "taylor":
            images, labels = ctx.labelled(64)
            nn.functional.cross_entropy(model(images), labels).backward()
        pruner.step()
    model.zero_grad(set_to_none=True)
    return measure_stage(
        model.eval(),
        index=index,
        stage=f"torch-pruning direct: {stage.criterion} {stage.ratio:g}, no finetune",
        kind="direct_prune",
        out_dir=out_dir,
        splits=ctx.splits,
        input_shape=ctx.input_shape,
        onnx_name="direct_prune.onnx",
        notes=["torch_pruning.pruner.BasePruner, classifier ignored, no finetuning"],
    )


def direct_int8(ctx: StageContext, out_dir: Path, *, index: int) -> StageResult:
    """``onnxruntime.quantization.quantize_static`` with its defaults on the original model."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from slimforge.compress.quantize._int8 import _quiet
    from slimforge.hardware import export_onnx

    images = ctx.calibration().numpy().astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(range(len(images)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self._it, None)
            return None if i is None else {"input": images[i : i + 1]}

    with tempfile.TemporaryDirectory(prefix="slimforge-direct-") as tmp, _quiet():
        float_onnx = export_onnx(ctx.original, ctx.input_shape, Path(tmp) / "float.onnx")
        out = Path(tmp) / "int8.onnx"
        quantize_static(str(float_onnx), str(out), Reader())
        return measure_stage(
            ctx.original,
            index=index,
            stage="onnxruntime quantize_static, defaults",
            kind="direct_int8",
            out_dir=out_dir,
            splits=ctx.splits,
            input_shape=ctx.input_shape,
            deployed_onnx=out,
            onnx_name="direct_int8.onnx",
            notes=[
                f"QDQ, per-tensor, int8 activations, MinMax, no pre-processing; {len(images)} calibration images"
            ],
        )
