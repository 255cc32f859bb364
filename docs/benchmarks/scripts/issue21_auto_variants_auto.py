"""Issue 21, `auto` tuning: ``auto`` over :class:`VariantPLS` (see issue21_auto_variants.py).

:class:`VariantAuto` is the shipped :class:`~slimforge.search.algorithms.auto.Auto` with its local
phase replaced by a :class:`VariantPLS` on the same seed, and with the experimental settings off
by default (``weight_power=1``, ``deepen=False``: the previous ``auto``).
"""

from __future__ import annotations

from typing import Any

from issue21_auto_variants import EXPERIMENTAL, VariantPLS

from slimforge.search.algorithms._ga import GA_DEFAULTS
from slimforge.search.algorithms.auto import Auto, _AdoptingPLS
from slimforge.spaces import SearchSpace

__all__ = ["VariantAuto"]


class _AdoptingVariantPLS(VariantPLS, _AdoptingPLS):
    """:class:`VariantPLS` with the shipped ``adopt`` (starts from evaluations made elsewhere)."""

    model_share = 0.0  # the shipped auto's model picks stay off


class VariantAuto(Auto):
    """NSGA-II for ``global_evaluations`` distinct evaluations (none by default), then :class:`VariantPLS`.

    Args: those of ``auto``, and the experimental settings of :class:`VariantPLS` for the local phase.
    """

    name = "auto_variants"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        global_evaluations: int = 0,
        pop_size: int = GA_DEFAULTS["pop_size"],
        batch_size: int = 10,
        p_local: float = 0.9,
        floor: float = 0.0,
        focus_percentile: float = 60.0,
        epsilon: float = 0.0,
        network_moves: bool = False,
        deepen: bool = False,
        weight_power: float = 1.0,
        model_filter: bool = False,
        learn_moves: bool = False,
        second_share: float = 0.0,
        extreme_bonus: bool = False,
        alt_percentile: float = -1.0,
        deepen_layers: int = 0,
    ) -> None:
        local = {
            "batch_size": batch_size,
            "p_local": p_local,
            "floor": floor,
            "focus_percentile": focus_percentile,
        }
        super().__init__(
            space,
            seed=seed,
            global_evaluations=global_evaluations,
            pop_size=pop_size,
            weight_power=weight_power,
            deepen=0,
            **local,
        )
        # The same seed as the shipped local phase built above, so both draw the same stream.
        self._local = _AdoptingVariantPLS(
            space,
            seed=self._local.seed,
            n_init=pop_size,
            weight_power=weight_power,
            deepen=deepen,
            epsilon=epsilon,
            network_moves=network_moves,
            model_filter=model_filter,
            learn_moves=learn_moves,
            second_share=second_share,
            extreme_bonus=extreme_bonus,
            alt_percentile=alt_percentile,
            deepen_layers=deepen_layers,
            **local,
        )

    def settings(self) -> dict[str, Any]:
        local = self._local.settings()
        return {**super().settings(), **{k: local[k] for k in EXPERIMENTAL}}
