"""``slimforge compress``: train a baseline, check what can be pruned, or run a compression recipe."""

from __future__ import annotations

import argparse
import math
import sys

from slimforge.errors import InvalidInputError

HELP = (
    "compress a model by a recipe (prune, quantize, low-rank, distil); or --train a baseline, "
    "--check what can be pruned, report INT8 --sensitivity"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are parsed in run(), not by argparse, so bad values give slimforge's one-line error.
    parser.add_argument(
        "model", metavar="MODEL", help="a zoo model name or a saved slimforge model directory"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--train", action="store_true", help="train MODEL on --data and save it to --out (a baseline)"
    )
    mode.add_argument(
        "--check", action="store_true", help="list the layers structured pruning cannot prune, and why"
    )
    mode.add_argument(
        "--sensitivity",
        action="store_true",
        help="per-layer INT8 sensitivity on --data: each layer alone quantized, accuracy drop and output KL",
    )
    parser.add_argument(
        "--data", default="digits", metavar="SPEC", help="data spec, e.g. npz:FILE or digits (default)"
    )
    parser.add_argument(
        "--width", metavar="W", help="width multiplier for a zoo MODEL (default: the model's own)"
    )
    parser.add_argument("--out", metavar="DIR", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--epochs", default="30", metavar="E", help="--train: epochs (default 30)")
    parser.add_argument(
        "--lr", default="0.05", metavar="LR", help="--train: peak learning rate (default 0.05)"
    )
    parser.add_argument("--batch-size", default="64", metavar="B", help="batch size (default 64)")
    parser.add_argument("--label-smoothing", default="0", metavar="S", help="label smoothing (default 0)")
    parser.add_argument("--seed", default="0", metavar="N", help="seed of the split, order and augmentation")
    parser.add_argument(
        "--threads",
        default="1",
        metavar="N",
        help="PyTorch threads (default 1: a busy machine runs slower with more)",
    )
    parser.add_argument(
        "--recipe", metavar="STAGES", help='stages, e.g. "prune:l1:0.5,distill:teacher=self,quantize:int8"'
    )
    parser.add_argument(
        "--finetune-epochs", default="5", metavar="E", help="epochs of each finetuning run (default 5)"
    )
    parser.add_argument(
        "--finetune-lr", default="0.01", metavar="LR", help="finetuning peak learning rate (default 0.01)"
    )
    parser.add_argument(
        "--max-accuracy-drop",
        metavar="PTS",
        help="allowed validation accuracy drop in points (default: no budget)",
    )
    parser.add_argument(
        "--calib", default="128", metavar="N", help="real images calibrating INT8 (default 128)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="add torch-pruning and ONNX Runtime's quantizer used directly, side by side",
    )
    parser.add_argument(
        "--time-cap", default="10", metavar="S", help="seconds of timed latency runs per stage (default 10)"
    )
    parser.add_argument(
        "--input", metavar="SHAPE", help="--check: input shape (default: the saved model's, or 1x3x32x32)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _number(flag: str, text: str, kind: type, lowest: float, *, strict: bool = False) -> float | int:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{flag} must be a number, got {text!r}") from None
    if value < lowest or (strict and value == lowest) or math.isnan(value):
        raise InvalidInputError(f"{flag} must be {'>' if strict else '>='} {lowest}, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(int(_number("--threads", args.threads, int, 1)))
    width = None if args.width is None else float(_number("--width", args.width, float, 0, strict=True))
    if args.train:
        return _train(args, width)
    if args.check:
        return _check(args, width)
    if args.sensitivity:
        return _sensitivity(args, width)
    return _compress(args, width)


def _train(args: argparse.Namespace, width: float | None) -> int:
    from slimforge.compress import TrainConfig, train_baseline

    if not args.out:
        raise InvalidInputError("--train needs --out DIR to save the trained model to")
    config = TrainConfig(
        epochs=int(_number("--epochs", args.epochs, int, 0)),
        batch_size=int(_number("--batch-size", args.batch_size, int, 1)),
        lr=float(_number("--lr", args.lr, float, 0, strict=True)),
        label_smoothing=float(_number("--label-smoothing", args.label_smoothing, float, 0)),
        seed=int(_number("--seed", args.seed, int, 0)),
    )
    result = train_baseline(
        args.model,
        args.data,
        args.out,
        config,
        width=width,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        print(result.to_json())
        return 0
    test = "n/a" if result.test_accuracy_pct is None else f"{result.test_accuracy_pct:.2f}%"
    print(
        f"trained {result.model} on {result.data} for {config.epochs} epochs "
        f"({result.training.seconds:.0f} s): val {result.val_accuracy_pct:.2f}%, test {test}; "
        f"saved to {result.out_dir}"
    )
    return 0


def _compress(args: argparse.Namespace, width: float | None) -> int:
    from slimforge.compress import compress
    from slimforge.compress._report import format_report

    if not args.recipe:
        raise InvalidInputError(
            "give --recipe STAGES (e.g. prune:l1:0.5,quantize:int8), --train, --check or --sensitivity"
        )
    if not args.out:
        raise InvalidInputError("--recipe needs --out DIR for the compressed model and its report")
    drop = args.max_accuracy_drop
    report = compress(
        args.model,
        args.data,
        args.recipe,
        args.out,
        width=width,
        finetune_epochs=int(_number("--finetune-epochs", args.finetune_epochs, int, 0)),
        finetune_lr=float(_number("--finetune-lr", args.finetune_lr, float, 0, strict=True)),
        batch_size=int(_number("--batch-size", args.batch_size, int, 1)),
        max_accuracy_drop=None if drop is None else float(_number("--max-accuracy-drop", drop, float, 0)),
        calibration_images=int(_number("--calib", args.calib, int, 1)),
        seed=int(_number("--seed", args.seed, int, 0)),
        compare=args.compare,
        latency_time_cap_s=float(_number("--time-cap", args.time_cap, float, 0, strict=True)),
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
    )
    print(report.to_json() if args.json else format_report(report))
    return 0


def _sensitivity(args: argparse.Namespace, width: float | None) -> int:
    import json

    from slimforge.compress import int8_sensitivity
    from slimforge.compress._models import resolve_model
    from slimforge.compress._report import format_sensitivity
    from slimforge.data import calibration_batch, load_dataset, sample_batch

    seed = int(_number("--seed", args.seed, int, 0))
    splits = load_dataset(args.data, seed=seed)
    source = resolve_model(args.model, num_classes=splits.num_classes, width=width)
    calib = calibration_batch(
        splits.train, min(int(_number("--calib", args.calib, int, 1)), len(splits.train)), seed=seed
    )
    images, labels = sample_batch(splits.val, min(512, len(splits.val)), seed=seed)
    rows = int8_sensitivity(source.model, calib, images, labels)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print(format_sensitivity(rows, f"{source.label} on {splits.spec} ({len(images)} validation images)"))
    return 0


def _check(args: argparse.Namespace, width: float | None) -> int:
    from slimforge.compress import check_prunable
    from slimforge.compress._models import resolve_model
    from slimforge.hardware import parse_input_shape

    source = resolve_model(args.model, num_classes=10, width=width)
    if args.input is not None:
        shape = parse_input_shape(args.input)
    else:
        shape = tuple(source.config.get("input_shape") or (1, 3, 32, 32))
    result = check_prunable(source.model, shape)
    if args.json:
        print(result.to_json())
        return 0
    print(
        f"{source.label}: {len(result.prunable)} prunable group(s) (named by their first layer), "
        f"{len(result.skipped)} layer(s) skipped"
    )
    for s in result.skipped:
        print(f"  skip {s.layer}: {s.reason}")
    if result.prunable:
        print("  prunable: " + ", ".join(result.prunable))
    return 0
