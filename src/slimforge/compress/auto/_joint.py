"""Joint architecture + bit-width search on a trained supernet (APQ-style), and its sequential baseline.

APQ (Wang et al., "APQ: Joint Search for Network Architecture, Pruning and Quantization Policy",
CVPR 2020) searches the architecture and each layer's bit-width together, because the best
architecture at 4 bits is not the best float architecture quantized. Here the genome of
:class:`JointSpace` is the layer-wise space's architecture genes (``mbv2``, ``shufflenet``) followed
by one weight bit-width gene per conv / linear position (the stem's, each searchable layer's,
the head's and the classifier's). Accuracy is that of the *quantized inherited-weight*
sub-network: the chosen path's weights rounded per layer (symmetric per-output-channel, as
:func:`linear_quantize`), activations fake-quantized to ``activation_bits`` per tensor (each batch's
range), batch-norm re-calibrated on training images, top-1 on the validation split
(:func:`slimforge.supernet.score_many`).

Cost: ONNX Runtime on this CPU runs every weight width from 2 to 8 bits with the same INT8
kernels, so a measured latency cannot see the bit-widths. The bit-aware cost is therefore
analytic: **BitOps** = sum over layers of MACs x weight bits x activation bits (the cost model of
bit-serial / mixed-precision accelerators such as BitFusion, used by APQ's and HAQ's follow-ups as
their latency proxy), with MACs per layer counted once from each block's real shapes; plus the
model's bytes (packed weights, a float32 scale per output channel, other parameters float32).

The baseline searches the architecture first in float (inherited-weight accuracy, the same engine,
budget and evaluations), with the budget evaluated at a uniform bit-width, then quantizes that
architecture uniformly: "architecture, then quantization", once per bit-width in ``baseline_bits``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.compress.auto._budget import Budget
from slimforge.compress.auto._engine import (
    Finished,
    Found,
    PolicyTask,
    SearchSetup,
    budget_problem,
    closest,
    front_points,
    run_search,
    run_task,
)
from slimforge.compress.auto._joint_eval import (
    JointEvaluator,
    final_row,
    largest_genome,
    load_supernet_and_data,
    smallest_genome,
)
from slimforge.compress.auto._joint_space import JointCosts, JointSpace
from slimforge.compress.auto._results import BaselineFront, JointSearchResult
from slimforge.compress.auto._settings import SearchSettings, apply_fields, check_count
from slimforge.data import DatasetSplits
from slimforge.errors import InvalidInputError
from slimforge.io import JsonRecord

__all__ = [
    "JOINT_BUDGET_KEYS",
    "JointOptions",
    "JointTask",
    "joint_search",
]

#: the budget keys the joint search takes.
JOINT_BUDGET_KEYS = ("bitops", "macs", "bytes", "size")


@dataclass(frozen=True)
class JointOptions(JsonRecord):
    """What the joint search alone takes.

    Args:
        bit_choices: weight bit-widths a layer may take.
        activation_bits: activation bit-width (fake-quantized, and counted in BitOps); 32 leaves
            activations float (and counts them at 32 bits).
        baseline_bits: uniform bit-widths of the sequential baselines.
        recal_images: training images that re-calibrate BN for every evaluation.
    """

    bit_choices: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    activation_bits: int = 8
    baseline_bits: tuple[int, ...] = (4, 8)
    recal_images: int = 256

    def __post_init__(self) -> None:
        check_count("activation bits", self.activation_bits, 2)
        if 16 < self.activation_bits < 32 or self.activation_bits > 32:
            raise InvalidInputError(
                f"activation bits must be 2 to 16, or 32 for float activations; got {self.activation_bits}"
            )
        check_count("recal images", self.recal_images, 0)
        object.__setattr__(self, "bit_choices", tuple(int(b) for b in self.bit_choices))
        object.__setattr__(self, "baseline_bits", tuple(int(b) for b in self.baseline_bits))


@dataclass(frozen=True, eq=False)
class _Context:
    """The joint task's state between its setup and finish hooks."""

    net: Any
    splits: DatasetSplits
    label: str
    space: JointSpace
    costs: JointCosts
    evals: dict[str, Any]
    evaluator: JointEvaluator
    reference: dict[str, float]
    budget: Budget


class JointTask(PolicyTask):
    """The joint search's hooks: the joint space on a supernet, and the float-first sequential baselines."""

    result_name = "joint_search"
    budget_keys = JOINT_BUDGET_KEYS
    what = "the joint architecture + bit-width search"
    search_key = "joint"
    noun = "genomes"
    default_key = "bitops"

    def __init__(
        self,
        supernet: str | Path | nn.Module,
        data: str | DatasetSplits | None,
        options: JointOptions,
        *,
        progress: bool = False,
    ) -> None:
        self.supernet = supernet
        self.data = data
        self.options = options
        self.progress = progress

    def _setup(self, budget: Budget, settings: SearchSettings) -> SearchSetup:
        from slimforge.supernet import EvalData

        opts = self.options
        net, splits, label = load_supernet_and_data(self.supernet, self.data)
        net.eval()
        space = JointSpace(net.space, opts.bit_choices, supernet=net)
        for b in opts.baseline_bits:
            if b not in space.bits:
                raise InvalidInputError(f"baseline bit-width {b} is not one of the choices {space.bits}")
        costs = JointCosts.measure(space, space.probe, (1, *splits.input_shape))
        evals = {
            "val": EvalData.from_splits(
                splits, split="val", recal_images=opts.recal_images, seed=settings.seed
            )
        }
        if splits.test is not None:
            evals["test"] = EvalData.from_splits(
                splits, split="test", recal_images=opts.recal_images, seed=settings.seed
            )
        largest = costs.of(space, largest_genome(space, costs), opts.activation_bits)
        reference = {"bitops": largest["bitops"], "macs": largest["macs"], "bytes": largest["float_bytes"]}
        metric = budget.metric
        bound = budget.bound(reference[metric])
        smallest = smallest_genome(space, costs)
        evaluator = JointEvaluator(
            space, space, net, evals["val"], costs, activation_bits=opts.activation_bits
        )
        problem = budget_problem(space, evaluator, metric, bound)
        context = _Context(net, splits, label, space, costs, evals, evaluator, reference, budget)
        smallest_cost = costs.of(space, smallest, opts.activation_bits)[metric]
        text = f"the smallest network (identity or the cheapest block per layer, every layer at {space.bits[0]} bits)"
        if smallest_cost > bound:
            problem = None
        return SearchSetup(problem, metric, bound, reference[metric], smallest, smallest_cost, text, context)

    def _finish(self, setup: SearchSetup, found: Found, settings: SearchSettings) -> Finished:
        c: _Context = setup.context
        opts, metric, bound, space = self.options, setup.metric, setup.bound, c.space
        act = opts.activation_bits
        row = functools.partial(
            final_row,
            space=space,
            supernet=c.net,
            splits=c.splits,
            evals=c.evals,
            costs=c.costs,
            activation_bits=act,
            metric=metric,
            bound=bound,
            train=settings.train,
        )
        message = found.message
        rows = [row("joint", genome=found.chosen.genome, estimate=found.chosen.metrics["accuracy"])]
        fronts: list[BaselineFront] = []
        for b in opts.baseline_bits:
            base_eval = JointEvaluator(
                space.arch_space, space, c.net, c.evals["val"], c.costs, activation_bits=act, baseline_bits=b
            )
            base_problem = budget_problem(space.arch_space, base_eval, metric, bound)
            if c.costs.of(space, space.join(space.split(setup.smallest)[0], b), act)[metric] > bound:
                message += (
                    f"; no architecture meets the budget at uniform {b} bits: no sequential baseline there"
                )
                continue
            result = run_search(base_problem, settings, progress=self.progress)
            found.searches[f"float_arch_then_{b}bit"] = result
            fronts.append(BaselineFront(int(b), front_points(result, metric)))
            if not result.num_feasible:
                message += (
                    f"; the float search at {b} bits found no architecture within budget (closest shown)"
                )
            genome = space.canonical(space.join(closest(result, metric).genome, b))
            quantized = c.evaluator.evaluate(genome)["accuracy"]
            rows.append(row(f"float arch, then {b}-bit", genome=genome, estimate=quantized))
        record = JointSearchResult(
            supernet=c.label,
            data=str(c.splits.spec),
            budget=c.budget.text,
            budget_metric=metric,
            budget_bound=bound,
            budget_met=bool(rows[0].within_budget),
            message=message,
            reference=c.reference,
            cost_model=(
                f"BitOps = sum of MACs x weight bits x {act} activation bits per conv/linear layer "
                "(analytic, bit-aware latency proxy); bytes = packed weights + float32 scale per channel "
                "+ float32 other parameters"
            ),
            activation_bits=act,
            bit_choices=space.bits,
            estimate=(
                f"top-1 accuracy on {len(c.evals['val'].labels)} validation images of the inherited-weight "
                f"sub-network, weights rounded per layer (symmetric per-channel), activations "
                f"{act}-bit per tensor, BN re-calibrated on {len(c.evals['val'].recal_images)} "
                "training images"
            ),
            **found.record_fields(settings, refined=False),
            policy=space.to_string(found.chosen.genome),
            bits=space.bit_policy(found.chosen.genome),
            baseline_fronts=tuple(fronts),
            rows=tuple(rows),
        )
        return Finished(record)

    def format(self, record: JsonRecord) -> str:
        from slimforge.compress.auto._report import format_joint

        return format_joint(record)


def joint_search(
    supernet: str | Path | nn.Module,
    data: str | DatasetSplits | None,
    budget: str | Budget,
    out_dir: str | Path | None = None,
    *,
    settings: SearchSettings | None = None,
    options: JointOptions | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **fields: Any,
) -> JointSearchResult:
    """Search architecture and per-layer bit-widths together on a trained supernet, under ``budget``.

    Args:
        supernet: a ``slimforge supernet train`` run directory (layer-wise space), or a supernet
            module (then give ``data`` as loaded splits).
        data: a data spec or splits; None uses the run's data and validation split.
        budget: ``bitops=F``, ``macs=F``, ``size=F`` (fractions of the reference, see
            :class:`JointSearchResult`) or ``bytes=N``.
        out_dir: gets ``joint_search.json``, ``joint_search.txt`` and ``searches.json``; None writes nothing.
        settings: how the searches run (:class:`SearchSettings`; here 100 evaluations and no finetune
            by default): the joint search, and again each baseline search; a finetune > 0 is
            quantization-aware (0: the rows are the inherited weights).
        options: what only the joint search takes (:class:`JointOptions`).
        overwrite: replace a non-empty ``out_dir``.
        progress: progress bars on stderr.
        **fields: any field of :class:`SearchSettings` or :class:`JointOptions`.
    """
    settings, options = apply_fields(
        fields,
        settings or SearchSettings(search_budget=100, finetune_epochs=0),
        options or JointOptions(),
        what="joint_search",
    )
    task = JointTask(supernet, data, options, progress=progress)
    return run_task(task, budget, settings, out_dir, overwrite=overwrite, progress=progress)  # type: ignore[return-value]
