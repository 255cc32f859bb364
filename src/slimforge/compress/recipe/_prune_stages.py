"""Recipe stages that remove weights: ``prune`` (structured) and ``sparsify`` (unstructured)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from slimforge.compress.recipe._spec import StageSpec
from slimforge.compress.recipe._stage import (
    Stage,
    StageContext,
    StageOutcome,
    choice_option,
    flag_option,
    float_option,
    int_option,
    no_more_args,
    ratio_arg,
    registry_arg,
)
from slimforge.errors import InvalidInputError

if TYPE_CHECKING:
    from slimforge.compress.prune import PruneResult

__all__ = ["ROUND_TO_CANDIDATES", "PruneStage", "SparsifyStage", "split_epochs"]

#: channel roundings ``round_to=auto`` times against each other (vector widths of common CPUs/NPUs).
ROUND_TO_CANDIDATES = (1, 4, 8, 16)


def split_epochs(total: int, steps: int) -> list[int]:
    """``total`` epochs over ``steps`` finetuning runs, the remainder on the last."""
    parts = [total // steps] * steps
    parts[-1] += total - sum(parts)
    return parts


@dataclass(frozen=True, eq=False)
class PruneStage(Stage):
    """``prune:CRITERION:RATIO[:steps=N][:global=1][:round_to=K|auto][:slimming=S][:@PATH=R]``: structured pruning.

    CRITERION is l1, l2, bn (Network Slimming: L1 sparsity training on BN scales first, for the
    finetune epochs), taylor or random. Each of the ``steps`` prune steps is followed by
    finetuning (the finetune epochs shared between them). ``@PATH=R`` sets a per-layer ratio.
    ``round_to=K`` keeps channel counts multiples of K; ``auto`` (the default) times the pruned
    structure at each of :data:`ROUND_TO_CANDIDATES` on the measured gate's device and keeps the
    fastest (odd channel counts can make a runtime several times slower); without a gate it is 1.
    """

    criterion: str
    ratio: float
    steps: int
    global_pruning: bool
    round_to: int | None
    slimming: float
    layer_ratios: tuple[tuple[str, float], ...]

    name = "prune"
    changes_structure = True

    option_names = frozenset({"steps", "global", "round_to", "slimming"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        from slimforge.compress.prune import IMPORTANCES

        registry_arg(spec, IMPORTANCES, "a criterion and a ratio, e.g. prune:l1:0.5 (criteria: {names})")
        layer_ratios = []
        for key, value in spec.options:
            if key.startswith("@"):
                try:
                    r = float(value)
                except ValueError:
                    r = -1.0
                if not 0 < r < 1:
                    raise InvalidInputError(
                        f"recipe stage {spec.text!r}: ratio {value!r} of {key[1:]} must be strictly between 0 and 1"
                    )
                layer_ratios.append((key[1:], r))
        no_more_args(spec, 2)
        return cls(
            spec,
            criterion=spec.args[0],
            ratio=ratio_arg(spec, 1, "pruning ratio"),
            steps=int_option(spec, "steps", 1, 1, 100),
            global_pruning=flag_option(spec, "global", False),
            round_to=(
                None
                if spec.option("round_to", "auto") == "auto"
                else int_option(spec, "round_to", 1, 1, 1024)
            ),
            slimming=float_option(spec, "slimming", 1e-4, 0.0, 1.0),
            layer_ratios=tuple(layer_ratios),
        )

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.prune import SlimmingHook

        outcome = StageOutcome()
        if self.criterion == "bn" and self.slimming > 0:
            ctx.train(hooks=[SlimmingHook(self.slimming)], desc="slimming")
            outcome.notes.append(f"sparsity training on BN scales (L1 {self.slimming:g}) before pruning")
        epochs = split_epochs(ctx.finetune.epochs, self.steps)
        round_to = self.round_to
        if round_to is None:
            round_to = self._measured_rounding(ctx, outcome) if ctx.gate is not None else 1
        result = self._prune(
            ctx,
            ctx.model,
            round_to,
            steps=self.steps,
            finetune=lambda _m, step: ctx.train(epochs[step], desc=f"finetune {step + 1}/{self.steps}"),
        )
        skipped = [s for s in result.skipped if not s.reason.startswith("output layer")]
        if skipped:
            outcome.notes.append("skipped: " + "; ".join(f"{s.layer} ({s.reason})" for s in skipped))
        outcome.details["prune"] = {**result.to_dict(), "round_to": round_to}
        return outcome

    def _prune(
        self,
        ctx: StageContext,
        model: nn.Module,
        round_to: int,
        *,
        steps: int = 1,
        finetune: Callable[[nn.Module, int], None] | None = None,
    ) -> PruneResult:
        """Prune ``model`` in place with the stage's settings, channel counts multiples of ``round_to``.

        :func:`prune_channels`'s warnings are silenced: the stage reports the skipped layers in its notes.
        """
        from slimforge.compress.prune import prune_channels

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped layers are reported in the notes
            return prune_channels(
                model,
                ctx.input_shape,
                criterion=self.criterion,
                ratio=self.ratio,
                layer_ratios=dict(self.layer_ratios),
                global_pruning=self.global_pruning,
                round_to=round_to if round_to > 1 else None,
                seed=ctx.seed,
                batches=[ctx.labelled(64)] if self.criterion == "taylor" else [],
                steps=steps,
                finetune=finetune,
            )

    def _measured_rounding(self, ctx: StageContext, outcome: StageOutcome) -> int:
        """The rounding whose pruned structure runs fastest on the gate's device (before finetuning).

        Each candidate prunes a copy in one step without finetuning: the structure, not the
        weights, sets the latency. Among candidates within the gate's tolerance of the fastest,
        the finest rounding wins (it stays closest to the requested ratio).
        """
        import copy

        candidates = []
        for k in ROUND_TO_CANDIDATES:
            trial = copy.deepcopy(ctx.model)
            self._prune(ctx, trial, k)
            candidates.append(trial.eval())
        labels = ["input", *(f"round_to={k}" for k in ROUND_TO_CANDIDATES)]
        cmp = ctx.gate.compare([ctx.model.eval(), *candidates], labels)
        best = min(cmp.ratio[1:])
        choice = next(
            k for k, r in zip(ROUND_TO_CANDIDATES, cmp.ratio[1:]) if r <= best * (1 + cmp.tolerance)
        )
        timed = ", ".join(f"{k}: {r:.2f}x" for k, r in zip(ROUND_TO_CANDIDATES, cmp.ratio[1:]))
        outcome.notes.append(
            f"round_to={choice} chosen by measurement on {cmp.device} (latency of the pruned structure / "
            f"the input's, before finetuning: {timed})"
        )
        outcome.details["round_to_timing"] = cmp.to_dict()
        return choice


@dataclass(frozen=True, eq=False)
class SparsifyStage(Stage):
    """``sparsify:RATIO[:scope=layer|global][:steps=N]``: unstructured magnitude pruning (Han et al., 2015).

    ``steps`` > 1 prunes RATIO*k/N at step k with finetuning between; the pruned weights stay zero
    in every later finetune.
    """

    ratio: float
    scope: str
    steps: int

    name = "sparsify"
    constrains_weights = True

    option_names = frozenset({"scope", "steps"})

    @classmethod
    def _from_spec(cls, spec: StageSpec) -> Stage:
        scope = choice_option(spec, "scope", "layer", ("layer", "global"))
        no_more_args(spec, 1)
        return cls(
            spec,
            ratio=ratio_arg(spec, 0, "sparsity ratio"),
            scope=scope,
            steps=int_option(spec, "steps", 1, 1, 100),
        )

    def _apply(self, ctx: StageContext) -> StageOutcome:
        from slimforge.compress.prune import MaskHook, magnitude_masks, sparsity

        epochs = split_epochs(ctx.finetune.epochs, self.steps)
        hook = None
        for k in range(1, self.steps + 1):
            hook = MaskHook(magnitude_masks(ctx.model, self.ratio * k / self.steps, scope=self.scope))
            hook.attach(ctx.model)
            ctx.train(epochs[k - 1], hooks=[hook], desc=f"finetune {k}/{self.steps}")
        ctx.persistent_hooks.append(hook)
        return StageOutcome(
            notes=[f"{sparsity(ctx.model):.1%} of conv/linear weights are zero ({self.scope})"]
        )
