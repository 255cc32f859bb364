"""DARTS: differentiable architecture search (Liu et al., ICLR 2019), first and second order."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from slimforge.errors import InvalidInputError
from slimforge.supernet._arch import ArchTrainer

__all__ = ["DARTSTrainer"]


class DARTSTrainer(ArchTrainer):
    """Alternates an architecture step on a validation batch with a weight step on a training batch.

    Every edge outputs ``sum_k softmax(alpha)_k * op_k(x)``. Option ``order``: 1 takes the gradient of
    the validation loss at the current weights; 2 takes it at the weights after one virtual SGD step
    ``w' = w - xi * (momentum buffer + grad + weight decay)`` (xi = the current learning rate), with the
    Hessian-vector term by central finite differences at ``w +- eps * dL_val/dw'``,
    ``eps = fd_eps / ||dL_val/dw'||`` with ``fd_eps = 0.01`` (the paper's approximation, its eq. 7-8).
    """

    name = "darts"
    default_options: ClassVar[dict[str, Any]] = {"order": 1, "fd_eps": 0.01}

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        if options["order"] not in (1, 2) or isinstance(options["order"], bool):
            raise InvalidInputError(f"method 'darts': order must be 1 or 2, got {options['order']!r}")
        eps = options["fd_eps"]
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise InvalidInputError(f"method 'darts': fd_eps must be a number > 0, got {eps!r}")

    def _mixture_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.alpha, dim=1)
        return self._loss(self.supernet.forward_mixture(images, weights), labels)  # type: ignore[attr-defined]

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        assert val is not None  # step() enforces it (needs_val)
        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.options["order"] == 1:
            (grad,) = torch.autograd.grad(self._mixture_loss(*val), [self.alpha])
        else:
            grad = self._unrolled_arch_grad(images, labels, val)
        self.alpha.grad = grad
        self.arch_optimizer.step()

        self.optimizer.zero_grad(set_to_none=True)
        loss = self._mixture_loss(images, labels)
        loss.backward()
        self.alpha.grad = None  # the weight step must not leave a gradient on alpha
        self._update_weights()
        return loss.item()

    def _unrolled_arch_grad(
        self, images: torch.Tensor, labels: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        params = self.weight_parameters()
        xi = self.optimizer.param_groups[0]["lr"]
        momentum = self.config.momentum
        decay = self.config.weight_decay
        backup = [p.detach().clone() for p in params]

        grads = torch.autograd.grad(self._mixture_loss(images, labels), params, allow_unused=True)
        # Data-parallel: the virtual step and the perturbation are the global batch's (d_alpha and the
        # finite differences are averaged with alpha's gradient before the step).
        grads = self.dist.mean_tensors(grads)
        with torch.no_grad():
            for p, g in zip(params, grads):
                step = decay * p if g is None else g + decay * p
                buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    step = step + momentum * buf
                p.sub_(xi * step)

        val_grads = torch.autograd.grad(self._mixture_loss(*val), [self.alpha, *params], allow_unused=True)
        d_alpha = val_grads[0]
        vector = [torch.zeros_like(p) if g is None else g for p, g in zip(params, val_grads[1:])]
        vector = self.dist.mean_tensors(vector)
        norm = torch.sqrt(sum((v * v).sum() for v in vector))
        eps = float(self.options["fd_eps"]) / max(float(norm), 1e-12)

        def train_alpha_grad(sign: float) -> torch.Tensor:
            with torch.no_grad():
                for p, w, v in zip(params, backup, vector):
                    p.copy_(w + sign * eps * v)
            (g,) = torch.autograd.grad(self._mixture_loss(images, labels), [self.alpha])
            return g

        plus = train_alpha_grad(1.0)
        minus = train_alpha_grad(-1.0)
        with torch.no_grad():
            for p, w in zip(params, backup):
                p.copy_(w)
        return d_alpha - xi * (plus - minus) / (2 * eps)
