"""``slimforge supernet``: train a weight-sharing supernet, or measure how well it ranks architectures."""

from __future__ import annotations

import argparse
import json
from typing import Any

from slimforge.cli._common import (
    add_settings_option,
    add_space_arg_option,
    add_subcommand,
    add_thread_options,
    add_train_device_option,
    key_values,
    set_torch_threads,
    train_device,
)
from slimforge.io import progress_bar

HELP = "train a weight-sharing supernet (SPOS, FairNAS, sandwich, DARTS, GDAS, RSPS) or rank architectures with it"


def _add_recipe(parser: argparse.ArgumentParser) -> None:
    """The arguments of a :class:`slimforge.supernet.TrainConfig` (train and standalone share them)."""
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    add_space_arg_option(parser)
    parser.add_argument("--data", required=True, help="data spec, e.g. npz:../shared/data/cifar10_subset.npz")
    parser.add_argument(
        "--method",
        default=None,
        help="fewshot, spos, fairnas, sandwich, darts, gdas or rsps (default: the space's recipe, spos with "
        "--bn-affine on mbv2 and shufflenet; otherwise TrainConfig's, fewshot)",
    )
    add_settings_option(parser, "supernet method", "order=2 for darts, warmup=0.5 for spos", old="--option")
    parser.add_argument("--epochs", type=int, required=True, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=None, help="images per step (default 64)")
    parser.add_argument(
        "--lr", type=float, default=None, help="SGD learning rate, cosine-decayed to 0 (default: TrainConfig's)"
    )
    parser.add_argument(
        "--weight-decay", type=float, default=None, help="SGD weight decay (default: TrainConfig's)"
    )
    parser.add_argument(
        "--bn-affine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch norm inside the searchable choices learns scale and shift (default: TrainConfig's)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="training images held out for DARTS/GDAS/RSPS (default 0.1)",
    )


def _recipe(args: argparse.Namespace, seed: int, *, space_recipe: bool = False) -> Any:
    """The TrainConfig of the command line; with ``space_recipe``, what it leaves unset comes from the
    space's :meth:`~slimforge.spaces.SearchSpace.supernet_recipe` before TrainConfig's defaults."""
    from slimforge.spaces import get_space
    from slimforge.supernet import TrainConfig

    optional = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "bn_affine": args.bn_affine,
        "val_fraction": args.val_fraction,
        "method": args.method,
    }
    space_kwargs = key_values(args.space_arg, "--space-arg", "width=0.5")
    if space_recipe:
        for key, value in get_space(args.space, **space_kwargs).supernet_recipe().items():
            if optional.get(key) is None:
                optional[key] = value
    return TrainConfig(
        data=args.data,
        epochs=args.epochs,
        space=args.space,
        space_kwargs=space_kwargs,
        method_options=key_values(args.settings, "--set", "order=2"),
        seed=seed,
        **{k: v for k, v in optional.items() if v is not None},
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = add_subcommand(
        sub, "train", "train a supernet (checkpoint every epoch; --resume continues)",
        "Train a weight-sharing supernet of --space on --data with --method (checkpoint.pt in --out every "
        "epoch; --resume continues from it).",
    )
    _add_recipe(train)
    train.add_argument("--out", required=True, help="run directory (config.json, checkpoint.pt)")
    train.add_argument("--seed", type=int, default=0, help="seeds weights, data order and path sampling")
    add_train_device_option(train, old_device=True)
    add_thread_options(train, default=None, default_text="PyTorch's")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    train.add_argument(
        "--stop-after-steps", type=int, default=None, help="stop (with a checkpoint) after this many steps"
    )
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    rank = add_subcommand(
        sub, "rank", "Kendall tau of supernet accuracy vs an accuracy table or a standalone reference",
        "Score sampled architectures with a trained supernet's inherited weights and report the rank "
        "correlation (Kendall tau, Spearman rho) with an accuracy table or a standalone reference.",
    )
    rank.add_argument("--checkpoint", required=True, help="run directory of 'supernet train'")
    rank.add_argument(
        "--table",
        default=None,
        help="CSV index,arch,accuracy, e.g. ../shared/data/nb201/accuracy_cifar10.csv (the truth when given)",
    )
    rank.add_argument(
        "--reference",
        default=None,
        help="directory of 'supernet standalone': rank its architectures (against its accuracy without --table)",
    )
    rank.add_argument(
        "--sample", type=int, default=200, help="architectures drawn from the table (default 200)"
    )
    rank.add_argument(
        "--seed", type=int, default=0, help="seed of the drawing and of the recalibration images"
    )
    rank.add_argument("--data", default=None, help="data spec to evaluate on (default: the run's)")
    rank.add_argument(
        "--recal-images", type=int, default=256, help="training images for BN re-calibration (default 256)"
    )
    rank.add_argument(
        "--bn",
        choices=("recalibrate", "batch"),
        default=None,
        help="batch norm while scoring: recalibrated running statistics or each batch's own (default: the run's)",
    )
    rank.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default 256)")
    rank.add_argument(
        "--finetune-steps",
        type=int,
        default=None,
        help="training batches each architecture's inherited weights are fine-tuned on before scoring "
        "(default: the scorer's, see slimforge.supernet.scoring; 0 = as inherited)",
    )
    rank.add_argument(
        "--finetune-lr", type=float, default=None, help="learning rate of that fine-tune (default 0.01)"
    )
    add_train_device_option(rank, old_device=True)
    add_thread_options(rank, default=None, default_text="PyTorch's")
    rank.add_argument("--json", action="store_true", help="print the result as JSON")

    _add_standalone(sub)


def _add_standalone(sub: Any) -> None:
    standalone = add_subcommand(
        sub, "standalone",
        "train a seeded set of sub-networks standalone with a supernet's recipe (the ranking reference, cached)",
    )
    _add_recipe(standalone)
    standalone.add_argument("--out", required=True, help="cache directory (reference.json; resumes)")
    standalone.add_argument("--sample", type=int, default=20, help="architectures (default 20, at least 3)")
    standalone.add_argument("--seed", type=int, default=0, help="seed of the drawing (default 0)")
    standalone.add_argument("--train-seed", type=int, default=0, help="seed of weights and data order (default 0)")
    standalone.add_argument(
        "--table", default=None, help="draw from this accuracy table (index,arch,accuracy) and compare with it"
    )
    add_train_device_option(standalone, old_device=True)
    add_thread_options(standalone, default=None, default_text="PyTorch's")
    standalone.add_argument("--json", action="store_true", help="print the result as JSON")


def _standalone(args: argparse.Namespace) -> int:
    from slimforge.supernet import build_reference

    set_torch_threads(args)
    device = train_device(args)
    config = _recipe(args, args.train_seed)
    bar = _Bar("standalone", "arch")

    try:
        ref = build_reference(
            args.out, config, sample=args.sample, seed=args.seed, table=args.table, device=device,
            progress=bar.count,
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps(ref.to_dict(), indent=2))
        return 0
    print(f"{ref.num_architectures} architectures of {ref.space} trained standalone ({config.epochs} epochs) -> {args.out}")
    for arch, acc in zip(ref.architectures, ref.accuracy_pct):
        print(f"{acc:6.2f} %  {arch}")
    if ref.true_accuracy_pct is not None:
        print(f"vs the table: Kendall tau {ref.kendall_tau:.4f}  Spearman rho {ref.spearman_rho:.4f}")
    print(f"training {ref.train_time_s:.1f} s, {ref.images_trained} images")
    return 0


class _Bar:
    """Progress on stderr (a bar on a terminal, plain lines elsewhere), created at the first update
    (when the step count is known)."""

    def __init__(self, desc: str, unit: str) -> None:
        self.desc, self.unit, self.bar = desc, unit, None

    def total(self, total: int, initial: int = 0):  # type: ignore[no-untyped-def]
        if self.bar is None:
            self.bar = progress_bar(total, self.desc, self.unit, dynamic_ncols=True)
            self.bar.n = initial
        return self.bar

    def count(self, done: int, total: int) -> None:
        """A ``progress(done, total)`` callback: ``done`` of ``total`` items."""
        b = self.total(total)
        b.update(done - b.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train(args: argparse.Namespace) -> int:
    from slimforge.supernet import train_supernet
    from slimforge.training.distributed import is_main_process

    set_torch_threads(args)
    device = train_device(args)
    config = _recipe(args, args.seed, space_recipe=True)
    bar = _Bar(f"supernet {config.method}", "step")

    def progress(p) -> None:  # type: ignore[no-untyped-def]
        b = bar.total(p.total_steps, p.step - 1)
        b.update(p.step - b.n)
        b.set_postfix(epoch=f"{p.epoch}/{p.epochs}", loss=f"{p.loss:.3f}", img_s=f"{p.images_per_s:.0f}")

    try:
        result = train_supernet(
            config,
            args.out,
            device=device,
            resume=args.resume,
            stop_after_steps=args.stop_after_steps,
            progress=progress if is_main_process() else None,
        )
    finally:
        bar.close()
    if not is_main_process():  # under torchrun, rank 0 alone reports
        return 0
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        state = "finished" if result.finished else "stopped"
        print(
            f"{result.method} supernet {state} at step {result.steps}/{result.total_steps} ({result.epochs} epochs) -> {result.checkpoint_dir}"
        )
        print(
            f"last epoch loss {result.final_loss:.4f}; {result.images_per_s:.1f} images/s over {result.wall_time_s:.1f} s"
        )
        if result.derived_arch:
            print(f"derived architecture: {result.derived_arch}")
    return 0


def _rank(args: argparse.Namespace) -> int:
    from slimforge.supernet import rank_supernet

    set_torch_threads(args)
    device = train_device(args)
    bar = _Bar("rank", "arch")

    try:
        result = rank_supernet(
            args.checkpoint,
            args.table,
            reference=args.reference,
            bn=args.bn,
            **{
                k: v
                for k, v in (("finetune_steps", args.finetune_steps), ("finetune_lr", args.finetune_lr))
                if v is not None
            },
            sample=args.sample,
            seed=args.seed,
            data=args.data,
            device=device,
            recal_images=args.recal_images,
            batch_size=args.batch_size,
            progress=bar.count,
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"{result.num_architectures} architectures (seed {result.seed}), {result.method} supernet, "
            f"{result.eval_split} split, BN {result.bn}, {result.finetune_steps} fine-tune steps, "
            f"against the {result.truth} accuracy"
        )
        rows = [
            ("supernet accuracy", result.kendall_tau, result.spearman_rho),
            ("supernet loss", result.loss_kendall_tau, result.loss_spearman_rho),
            ("#parameters", result.params_kendall_tau, result.params_spearman_rho),
        ]
        for label, tau, rho in rows:
            print(f"{label:<18} Kendall tau {tau:.4f}  Spearman rho {rho:.4f}")
        print(f"wall time {result.wall_time_s:.1f} s; {result.images_per_s:.1f} images/s")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"train": _train, "rank": _rank, "standalone": _standalone}[args.action](args)
