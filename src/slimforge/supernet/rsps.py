"""RSPS: random search with parameter sharing (Li & Talwalkar, UAI 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

from slimforge.errors import InvalidInputError
from slimforge.spaces import Genome
from slimforge.supernet.evaluate import EvalData, evaluate_many
from slimforge.supernet.spos import SPOSTrainer

__all__ = ["RSPSTrainer"]


class RSPSTrainer(SPOSTrainer):
    """Uniform single-path training on the training part (the validation part is held out), then a
    random search: ``num_candidates`` architectures drawn with the run's generator, each scored by its
    inherited-weight validation accuracy after BN re-calibration; the best is the derived architecture.

    Options: ``num_candidates`` (100), and SPOS's.
    """

    name = "rsps"
    holds_out_val = True
    default_options: ClassVar[dict[str, Any]] = {**SPOSTrainer.default_options, "num_candidates": 100}

    @classmethod
    def _check_options(cls, options: dict[str, Any]) -> None:
        super()._check_options(options)
        n = options["num_candidates"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInputError(f"method 'rsps': num_candidates must be a positive integer, got {n!r}")

    def derive(self, data: EvalData | None = None) -> Genome | None:
        """The best of ``num_candidates`` random architectures on ``data`` (the validation part)."""
        if data is None:
            return None
        rng = self._rng()
        canonical = self.options["sampling"] == "canonical"
        candidates = [
            self._sample_genome(rng, canonical=canonical) for _ in range(self.options["num_candidates"])
        ]
        scores = evaluate_many(self.supernet, candidates, data)
        best = max(range(len(candidates)), key=lambda k: (scores[k], -k))
        return candidates[best]
