"""ProxylessNAS: direct architecture search on the target task and hardware (Cai et al., ICLR 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from slimforge.errors import InvalidInputError
from slimforge.supernet._hardware_aware import HardwareAwareTrainer

__all__ = ["ProxylessTrainer"]


class ProxylessTrainer(HardwareAwareTrainer):
    """Binary gates: the weight step trains one path drawn from ``softmax(alpha)``; the architecture
    step draws two choices per gene (the paper's two-path sampling; NAS-Bench-201's mixture runs every
    operation anyway, so there every choice takes part), opens one gate, and estimates the gradient of
    the loss in alpha by the paper's eq. 4, ``dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)`` over
    the drawn choices. After the Adam step the drawn alphas are shifted so that the drawn choices'
    total probability is unchanged (the paper's rescaling: paths not drawn keep their probability).

    Soft mode adds ``lam * E[LAT] / ref`` (the paper's eq. 5 and its code's ``add#linear``, lambda
    0.1); hard mode adds the Lagrangian of the limit.
    """

    name = "proxyless"
    default_options: ClassVar[dict[str, Any]] = {**HardwareAwareTrainer.common_options, "lam": 0.1}

    @classmethod
    def _check_method_options(cls, options: dict[str, Any]) -> None:
        lam = options["lam"]
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
            raise InvalidInputError(f"method 'proxyless': lam must be a number >= 0, got {lam!r}")

    def _draw(self) -> tuple[list[list[int]], list[int]]:
        """Per gene, the active choices and the one whose gate opens."""
        probs = self.probs().detach().cpu().double()
        two = hasattr(self.supernet, "forward_gated")
        active, chosen = [], []
        for row, n in zip(probs, self.space.num_choices):
            if two and n > 1:
                pair = torch.multinomial(row[:n], 2, replacement=False, generator=self.generator).tolist()
            else:
                pair = list(range(n))
            sub = row[pair] / row[pair].sum()
            pick = pair[int(torch.multinomial(sub, 1, generator=self.generator))]
            active.append(sorted(pair))
            chosen.append(pick)
        return active, chosen

    def _arch_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        active, chosen = self._draw()
        gates = torch.zeros_like(self.alpha)
        gates[torch.arange(len(chosen)), torch.tensor(chosen)] = 1.0
        gates.requires_grad_(True)
        task = self._loss(self._run_gated(images, gates, active), labels)
        (gate_grad,) = torch.autograd.grad(task, [gates])

        logits = self.logits().detach()
        grad = torch.zeros_like(self.alpha)
        for i, run in enumerate(active):
            idx = torch.tensor(run, device=self.device)
            p = torch.softmax(logits[i, idx], dim=0)
            g = gate_grad[i, idx]
            # sum_j g_j p_j (delta_ij - p_i) = p_i * (g_i - sum_j g_j p_j)
            grad[i, idx] = p * (g - (g * p).sum())
        ratio = self.expected_cost() / self.reference
        cost = (
            self._cost_term(ratio) if self.options["mode"] == "hard" else float(self.options["lam"]) * ratio
        )
        if cost.requires_grad:
            (cost_grad,) = torch.autograd.grad(cost, [self.alpha])
            grad = grad + cost_grad
        before = self.alpha.detach().clone()
        self.arch_optimizer.zero_grad(set_to_none=True)
        self.alpha.grad = grad
        self.arch_optimizer.step()
        with torch.no_grad():
            for i, run in enumerate(active):
                idx = torch.tensor(run, device=self.device)
                offset = torch.logsumexp(before[i, idx], 0) - torch.logsumexp(self.alpha[i, idx], 0)
                self.alpha[i, idx] += offset
        return float(ratio.detach())
