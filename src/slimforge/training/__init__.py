"""The one classifier trainer, shared by compression, retraining and the benchmarks.

>>> from slimforge.training import TrainSettings, train_classifier, accuracy
>>> result = train_classifier(model, splits.train, TrainSettings(epochs=5, lr=0.05))  # doctest: +SKIP
>>> accuracy(model, splits.test)                                                    # doctest: +SKIP

:func:`train_classifier` trains in place with SGD (Nesterov) and a per-step cosine; methods that
take part in training (distillation, QAT, masks, shared weights) plug in as :class:`TrainHook`
objects. :func:`train_baseline` trains a zoo model (or a saved one) on a data set and saves it as
a slimforge model directory; :func:`resolve_model` turns a zoo name, a saved directory or a module
into the model and the config that rebuilds it. :class:`TrainRuntime` says where and how the steps
run (``auto``/``cpu``/``cuda[:N]``, opt-in bf16 autocast, ``torch.compile``, channels-last).
"""

from __future__ import annotations

from slimforge.training._baseline import BaselineResult, train_baseline
from slimforge.training._models import ModelSource, resolve_model
from slimforge.training._runtime import TrainRuntime, check_train_device, resolve_train_device
from slimforge.training._trainer import (
    TrainHook,
    TrainResult,
    TrainSettings,
    accuracy,
    onnx_accuracy,
    train_classifier,
)

__all__ = [
    "BaselineResult",
    "ModelSource",
    "TrainHook",
    "TrainResult",
    "TrainRuntime",
    "TrainSettings",
    "accuracy",
    "check_train_device",
    "onnx_accuracy",
    "resolve_model",
    "resolve_train_device",
    "train_baseline",
    "train_classifier",
]
