"""Knowledge distillation as a training hook: soft targets, FitNet hints, attention transfer.

- Soft targets (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015):
  ``(1 - alpha) * CE(y) + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))``.
- Hints (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015): the student's feature map
  at a layer, through a learned 1x1 conv regressor, matches the teacher's (mean squared error).
- Attention transfer (Zagoruyko and Komodakis, ICLR 2017): the students's spatial attention map
  (channel mean of squared activations, L2-normalised) matches the teacher's;
  ``beta / 2 * mean((a_s - a_t)^2)`` per layer, beta = 1000 as in the paper's code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from slimforge.errors import InvalidInputError
from slimforge.nn import evaluating
from slimforge.training import TrainHook

__all__ = ["DistillHook", "attention_map"]


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko and Komodakis's spatial attention: mean over channels of x^2, flattened, L2-normalised."""
    return F.normalize(features.pow(2).mean(1).flatten(1), dim=1)


class DistillHook(TrainHook):
    """Distil ``teacher`` into the model being trained.

    Args:
        teacher: the trained teacher (kept in eval mode, never updated).
        temperature: softening temperature T of both distributions.
        alpha: weight of the soft-target term (the cross-entropy gets ``1 - alpha``).
        hints: layer paths (present in both networks) whose outputs FitNet-match.
        hint_weight: weight of each hint's MSE.
        attention: layer paths whose attention maps are transferred.
        attention_weight: beta of attention transfer.
        input_shape: one input's shape, batch included (to size the hint regressors).
    """

    def __init__(
        self,
        teacher: nn.Module,
        *,
        temperature: float = 4.0,
        alpha: float = 0.9,
        hints: Sequence[str] = (),
        hint_weight: float = 1.0,
        attention: Sequence[str] = (),
        attention_weight: float = 1000.0,
        input_shape: Sequence[int] = (1, 3, 32, 32),
    ) -> None:
        if not temperature > 0:
            raise InvalidInputError(f"distillation temperature {temperature!r} must be > 0, e.g. 4")
        if not 0 <= alpha <= 1:
            raise InvalidInputError(f"distillation alpha {alpha!r} must be in [0, 1]")
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.hints = tuple(hints)
        self.hint_weight = float(hint_weight)
        self.attention = tuple(attention)
        self.attention_weight = float(attention_weight)
        self.input_shape = (2, *tuple(input_shape)[1:])
        self._student_feats: dict[str, torch.Tensor] = {}
        self._teacher_feats: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._regressors = nn.ModuleDict()

    def attach(self, model: nn.Module) -> None:
        # The teacher runs beside the student, on its device (a --train-device GPU); back in detach.
        device = next(iter(model.parameters()), torch.zeros(0)).device
        self._teacher_home = next(iter(self.teacher.parameters()), torch.zeros(0)).device
        self.teacher.to(device)
        self._regressors.to(device)
        layers = sorted(set(self.hints) | set(self.attention))
        for path in layers:
            for net, store, who in (
                (model, self._student_feats, "student"),
                (self.teacher, self._teacher_feats, "teacher"),
            ):
                try:
                    module = net.get_submodule(path)
                except AttributeError:
                    raise InvalidInputError(
                        f"distillation layer {path!r} is not in the {who} network"
                    ) from None
                self._handles.append(module.register_forward_hook(_store(store, path)))
        if self.hints and not len(self._regressors):
            # One forward pass on a dummy batch finds the channel counts the regressors map between.
            x = torch.zeros(self.input_shape, device=device)
            with torch.no_grad(), evaluating(model):
                model(x)
                self.teacher(x)
            for path in self.hints:
                s, t = self._student_feats[path], self._teacher_feats[path]
                self._regressors[path.replace(".", "_")] = nn.Conv2d(
                    s.shape[1], t.shape[1], 1, bias=False
                ).to(device)

    def parameters(self) -> list[nn.Parameter]:
        return list(self._regressors.parameters())

    def replace_loss(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        logits: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(images)
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(logits / t, 1),
            F.log_softmax(teacher_logits / t, 1),
            log_target=True,
            reduction="batchmean",
        )
        total = (1 - self.alpha) * loss + self.alpha * t * t * soft
        for path in self.hints:
            s, tf = self._student_feats[path], self._teacher_feats[path]
            s = self._regressors[path.replace(".", "_")](s)
            if s.shape[-2:] != tf.shape[-2:]:
                s = F.adaptive_avg_pool2d(s, tf.shape[-2:])
            total = total + self.hint_weight * F.mse_loss(s, tf)
        for path in self.attention:
            s, tf = self._student_feats[path], self._teacher_feats[path]
            if s.shape[-2:] != tf.shape[-2:]:
                s = F.adaptive_avg_pool2d(s, tf.shape[-2:])
            total = total + self.attention_weight / 2 * (attention_map(s) - attention_map(tf)).pow(2).mean()
        return total

    def detach(self, model: nn.Module) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._student_feats.clear()
        self._teacher_feats.clear()
        home = getattr(self, "_teacher_home", None)
        if home is not None:
            self.teacher.to(home)
            self._regressors.to(home)


def _store(store: dict[str, torch.Tensor], path: str) -> Callable:
    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
        store[path] = out

    return hook
