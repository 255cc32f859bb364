"""How many PyTorch threads train fastest on this machine, now.

On a busy 2-core machine PyTorch's default (every core) can train nine times slower than one
thread, because its threads spin against the other load; on an idle many-core machine more
threads win. :func:`fastest_torch_threads` times a small convolutional training step at each
candidate count, interleaved, and returns the fastest with the timings that chose it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = ["ThreadChoice", "check_thread_count", "fastest_torch_threads"]

#: the most intra-op threads slimforge will set (beyond this a CPU run gains nothing measurable).
MAX_THREADS = 256


@dataclass(frozen=True)
class ThreadChoice(JsonRecord):
    """The chosen thread count and the steps per second measured at each candidate."""

    threads: int
    steps_per_s: dict[str, float]
    how: str

    def describe(self) -> str:
        """``2 threads (1: 41 steps/s, 2: 60 steps/s; timed now)``."""
        timed = ", ".join(f"{k}: {v:.0f} steps/s" for k, v in self.steps_per_s.items())
        return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.how}{'; ' + timed if timed else ''})"


def check_thread_count(value: object, flag: str = "--threads") -> int:
    """``value`` as a thread count in 1..MAX_THREADS, or a one-line error naming ``flag``."""
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise InvalidInputError(f"{flag} must be an integer from 1 to {MAX_THREADS} (or auto), got {value!r}")
    return n


def fastest_torch_threads(candidates: Sequence[int] | None = None, *, seconds: float = 0.25) -> ThreadChoice:
    """Time a small training step at each thread count (two interleaved passes) and keep the fastest.

    The process's thread count is left at the chosen value.
    """
    cpus = os.cpu_count() or 1
    if candidates is None:
        candidates = sorted({1, min(cpus, 2), min(cpus, 4), min(cpus, 8)})
    if len(candidates) == 1:
        torch.set_num_threads(candidates[0])
        return ThreadChoice(candidates[0], {}, f"{cpus} logical core(s)")
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    images, labels = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    rates: dict[int, list[float]] = {n: [] for n in candidates}
    for _ in range(2):
        for n in candidates:
            torch.set_num_threads(n)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or steps < 2:
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(images), labels).backward()
                optimizer.step()
                steps += 1
            rates[n].append(steps / (time.perf_counter() - start))
    best = max(candidates, key=lambda n: max(rates[n]))
    torch.set_num_threads(best)
    return ThreadChoice(best, {str(n): max(v) for n, v in rates.items()}, "the fastest timed now")
