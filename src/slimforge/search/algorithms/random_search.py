"""Random search: uniform genomes, repeats skipped (the baseline every search must beat)."""

from __future__ import annotations

from slimforge.search.algorithms._base import Algorithm, check_count
from slimforge.search.evaluation import Evaluation
from slimforge.spaces import Genome, SearchSpace

__all__ = ["RandomSearch"]


class RandomSearch(Algorithm):
    """Draws ``batch_size`` uniform genomes per ask whose canonical form was not drawn before.

    Skipping repeats changes nothing but the number of asks: the engine never evaluates a
    network twice anyway (Bergstra & Bengio 2012; Li & Talwalkar 2019 for NAS).
    """

    name = "random"
    _settings = ("batch_size",)

    def __init__(self, space: SearchSpace, *, seed: int = 0, batch_size: int = 50) -> None:
        super().__init__(space, seed=seed)
        check_count("batch_size", batch_size, space, default=50)
        self.batch_size = int(batch_size)
        self._drawn: set[Genome] = set()

    def _ask(self) -> list[Genome]:
        return self._sample_new(self.batch_size, self._drawn)

    def _tell(self, evaluations: list[Evaluation]) -> None:
        pass
