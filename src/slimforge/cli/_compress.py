"""``slimforge compress``: train a baseline, check what can be pruned, or run a compression recipe."""

from __future__ import annotations

import argparse
import math
import sys

from slimforge.cli._common import (
    OptionSpec,
    add_latency_device_options,
    add_model_argument,
    add_model_options,
    add_options,
    add_thread_options,
    add_train_device_option,
    model_options,
    remote_options,
    set_torch_threads,
    thread_counts,
    train_device,
)
from slimforge.errors import InvalidInputError

HELP = (
    "compress a model by a recipe (prune, quantize, low-rank, distil); search a per-layer policy "
    "(--auto prune|bits, or --auto joint on a supernet); or --train a baseline, --check what can be "
    "pruned, report INT8 --sensitivity"
)


#: the --auto group.
# fmt: off
_AUTO_OPTIONS: tuple[OptionSpec, ...] = (
    ("--budget", None, "KEY=VALUE",
     ("cost bound: latency=F (fraction of the original's latency measured on this runtime; a bare F means this), "
     "latency_ms=X (or Xms), macs=F (fraction of the original's MACs), bytes=N, size=F (fraction of the float32 "
     "bytes); bits: bits=B (the size of uniform B-bit), size=F (a bare F), bytes=N; joint: bitops=F (a bare F), "
     "macs=F, size=F (fractions of the largest network at 8 bits), bytes=N")),
    ("--search-budget", "40", "N", "distinct policies evaluated (default 40)"),
    ("--algorithm", "nsga2", "NAME", "search algorithm (default nsga2; see slimforge search)"),
    ("--criterion", "l1", "NAME", "prune: channel criterion l1, l2, bn, taylor, random (default l1)"),
    ("--round-to", None, "K", "prune: keep channel counts multiples of K (e.g. 8 under a latency budget; default any)"),
    ("--bit-choices", "2,3,4,5,6,8", "LIST", "bits/joint: bit-widths a layer may take"),
    ("--quantizer", "linear", "NAME", "bits: linear (per-channel scales) or kmeans (per-layer codebook)"),
    ("--baseline-bits", "4,8", "LIST", ("bits: uniform baselines reported (plus the one at equal size); joint: "
     "uniform bits of the sequential baselines (default 4,8)")),
    ("--activation-bits", "8", "B", "joint: activation bits (default 8)"),
    ("--estimate", None, "NAME", ("prune/bits: the candidate estimate, one of bn (BN re-calibration, validation "
     "top-1; the default), bn-fidelity, kd, kd-fidelity (see --audit-estimates)")),
    ("--recal", None, "N", "training images re-calibrating BN per candidate (default 256)"),
    ("--rerank", "0", "K", "prune/bits: fill the best K feasible policies, choose by --rerank-estimate (default 0: off)"),
    ("--rerank-estimate", "kd", "NAME", "prune/bits: the estimate that re-ranks them (default kd)"),
    ("--estimate-steps", None, "N", ("prune/bits: SGD steps per candidate before scoring it (default: the estimate's, "
     "0 for bn)")),
    ("--no-fill", None, None, ("prune/bits: keep the searched policy as found (default: spend what it leaves of the "
     "budget, most sensitive layer first)")),
    ("--audit-estimates", None, "N", ("prune: instead of a search, draw N seeded policies at --budget, score them with "
     "every estimate of --estimates, finetune each (--finetune-epochs) and report each estimate's rank correlation "
     "and noise")),
    ("--estimates", "bn,bn-fidelity,kd,kd-fidelity", "LIST", ("--audit-estimates: the estimates compared (default "
     "bn,bn-fidelity,kd,kd-fidelity)")),
    ("--no-latency", None, None, "prune: do not measure the final models' latency"),
)
# fmt: on


#: the modes (one at most), the data and training options, the recipe's, the gate's.
# fmt: off
_MODE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--train", None, None, "train MODEL on --data and save it to --out (a baseline)"),
    ("--check", None, None, "list the layers structured pruning cannot prune, and why"),
    ("--sensitivity", None, None, ("per-layer INT8 sensitivity on --data: each layer alone quantized, accuracy drop "
     "and output KL")),
    ("--auto", None, "KIND", ("search a compression policy under --budget: prune (a ratio per layer group, "
     "AMC-style), bits (a weight bit-width per layer, HAQ-style) or joint (architecture + bit-widths on the "
     "supernet MODEL, APQ-style); compares with the uniform / sequential baseline at the same budget")),
)
_DATA_OPTIONS: tuple[OptionSpec, ...] = (
    ("--data", None, "SPEC", "data spec, e.g. npz:FILE or digits (default; --auto joint: the supernet run's data)"),
    ("--width", None, "W", "width multiplier for a zoo MODEL (default: the model's own)"),
    ("--out", None, "DIR", "output directory"),
    ("--overwrite", None, None, "replace --out if it exists"),
    ("--epochs", "30", "E", "--train: epochs (default 30)"),
    ("--lr", "0.05", "LR", "--train: peak learning rate (default 0.05)"),
    ("--batch-size", "64", "B", "batch size (default 64)"),
    ("--label-smoothing", "0", "S", "label smoothing (default 0)"),
    ("--seed", "0", "N", "seed of the split, order and augmentation"),
)
_RECIPE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--recipe", None, "STAGES", 'stages, e.g. "prune:l1:0.5,distill:teacher=self,quantize:int8"'),
    ("--finetune-epochs", "5", "E", "epochs of each finetuning run (default 5)"),
    ("--finetune-lr", "0.01", "LR", "finetuning peak learning rate (default 0.01)"),
    ("--max-accuracy-drop", None, "PTS", "allowed validation accuracy drop in points (default: no budget)"),
    ("--calib", "128", "N", "real images calibrating INT8 (default 128)"),
    ("--compare", None, None, "add torch-pruning and ONNX Runtime's quantizer used directly, side by side"),
    ("--time-cap", "10", "S", "seconds of timed latency runs per stage (default 10)"),
    ("--gate", "latency", "OBJECTIVE", ("measured gate per recipe stage: latency (default: a stage slower than its "
     "input on --device is repaired or dropped), size (a slower stage is kept when smaller, and reported slower) "
     "or none")),
)
_GATE_AND_CHECK_OPTIONS: tuple[OptionSpec, ...] = (
    ("--gate-tolerance", "0.05", "F", "relative slow-down the gate counts as noise (default 0.05 = 5%%)"),
    ("--input", None, "SHAPE", "--check: input shape (default: the saved model's, or 1x3x32x32)"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are parsed in run(), not by argparse, so bad values give slimforge's one-line error.
    add_model_argument(
        parser,
        "a zoo model name, a saved slimforge model directory, or your own factory by reference "
        "(path/to/file.py:factory or package.module:factory; --auto joint: a supernet run directory)",
    )
    add_model_options(parser)
    add_options(parser.add_mutually_exclusive_group(), _MODE_OPTIONS)
    add_options(parser, _DATA_OPTIONS)
    add_thread_options(parser, default_text="1: a busy machine runs slower with more", split=True)
    add_train_device_option(parser)
    add_options(parser, _RECIPE_OPTIONS)
    add_latency_device_options(
        parser, "each recipe stage is timed there: local-cpu (ONNX Runtime), local-litert, local-openvino, "
        "local-executorch or remote:http://HOST:PORT[#RUNTIME]"
    )
    add_options(parser, _GATE_AND_CHECK_OPTIONS)
    add_options(parser.add_argument_group("--auto policy search"), _AUTO_OPTIONS)
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
    from slimforge.training import TrainRuntime

    set_torch_threads(args)
    # checked before anything is read or written: --train-device cuda on a machine without one stops here
    args.runtime = TrainRuntime(device=train_device(args))
    width = None if args.width is None else float(_number("--width", args.width, float, 0, strict=True))
    if args.data is None and args.auto != "joint":
        args.data = "digits"
    args.model_config = None
    given = model_options(args)
    if given["model_args"] or given["weights"]:
        # MODEL with --model-arg/--weights is opened once here; every mode then takes the module and its config.
        from slimforge.io import open_model

        if args.train or args.auto == "joint":
            raise InvalidInputError("--model-arg and --weights apply to a MODEL to compress, not to --train or --auto joint")
        opened = open_model(args.model, width=width, **given)
        args.model, args.model_config = opened.model, opened.config
    if args.auto is not None:
        return _auto(args, width)
    if args.train:
        return _train(args, width)
    if args.check:
        return _check(args, width)
    if args.sensitivity:
        return _sensitivity(args, width)
    return _compress(args, width)


def _train(args: argparse.Namespace, width: float | None) -> int:
    from slimforge.training import TrainSettings, train_baseline

    if not args.out:
        raise InvalidInputError("--train needs --out DIR to save the trained model to")
    config = TrainSettings(
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
        progress=True,
        runtime=args.runtime,
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
    from slimforge.compress import GateConfig, compress, format_report
    from slimforge.hardware.devices import get_device

    if not args.recipe:
        raise InvalidInputError(
            "give --recipe STAGES (e.g. prune:l1:0.5,quantize:int8), --train, --check or --sensitivity"
        )
    if not args.out:
        raise InvalidInputError("--recipe needs --out DIR for the compressed model and its report")
    drop = args.max_accuracy_drop
    GateConfig(objective=args.gate)  # a bad objective fails before the device is reached
    device = get_device(args.device, **remote_options(args)) if args.gate != "none" else None
    report = compress(
        args.model,
        args.data,
        args.recipe,
        args.out,
        width=width,
        model_config=args.model_config,
        **_finetune_numbers(args),
        max_accuracy_drop=None if drop is None else float(_number("--max-accuracy-drop", drop, float, 0)),
        calibration_images=int(_number("--calib", args.calib, int, 1)),
        seed=int(_number("--seed", args.seed, int, 0)),
        compare=args.compare,
        latency_time_cap_s=float(_number("--time-cap", args.time_cap, float, 0, strict=True)),
        gate=GateConfig(
            objective=args.gate,
            device=args.device,
            threads=thread_counts(args)[1] or 1,
            tolerance=float(_number("--gate-tolerance", args.gate_tolerance, float, 0)),
        ),
        device=device,
        overwrite=args.overwrite,
        progress=True,
        runtime=args.runtime,
    )
    print(report.to_json() if args.json else format_report(report))
    return 0


def _sensitivity(args: argparse.Namespace, width: float | None) -> int:
    import json

    from slimforge.compress import format_sensitivity, int8_sensitivity, resolve_model
    from slimforge.data import calibration_batch, load_dataset, sample_batch

    seed = int(_number("--seed", args.seed, int, 0))
    splits = load_dataset(args.data, seed=seed)
    source = resolve_model(args.model, num_classes=splits.num_classes, width=width, config=args.model_config)
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
    from slimforge.compress import check_prunable, resolve_model
    from slimforge.hardware import parse_input_shape

    source = resolve_model(args.model, num_classes=10, width=width, config=args.model_config)
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


def _int_list(flag: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise InvalidInputError(
            f"{flag} must be comma-separated integers, e.g. 2,4,8; got {text!r}"
        ) from None
    if not values or any(not 1 <= v <= 8 for v in values):
        raise InvalidInputError(f"{flag} bit-widths must lie between 1 and 8; got {text!r}")
    return values


def _round_to(args: argparse.Namespace) -> int | None:
    return None if args.round_to is None else int(_number("--round-to", args.round_to, int, 1))


def _finetune_numbers(args: argparse.Namespace) -> dict[str, int | float]:
    """The finetuning epochs, peak learning rate and batch size every compression mode shares."""
    return {
        "finetune_epochs": int(_number("--finetune-epochs", args.finetune_epochs, int, 0)),
        "finetune_lr": float(_number("--finetune-lr", args.finetune_lr, float, 0, strict=True)),
        "batch_size": int(_number("--batch-size", args.batch_size, int, 1)),
    }


# Each --auto runner's keyword arguments beyond (model, data, budget, out), ``common`` included.
def _prune_kwargs(args: argparse.Namespace, width: float | None, common: dict) -> dict:
    return {
        "width": width,
        "criterion": args.criterion,
        "round_to": _round_to(args),
        **_search_options(args),
        "measure_latency": not args.no_latency,
        "latency_time_cap_s": float(_number("--time-cap", args.time_cap, float, 0, strict=True)),
        **common,
    }


def _bits_kwargs(args: argparse.Namespace, width: float | None, common: dict) -> dict:
    return {
        "width": width,
        "bit_choices": _int_list("--bit-choices", args.bit_choices),
        "quantizer": args.quantizer,
        "compare_bits": _int_list("--baseline-bits", args.baseline_bits),
        **_search_options(args),
        **common,
    }


def _joint_kwargs(args: argparse.Namespace, width: float | None, common: dict) -> dict:
    if width is not None:
        raise InvalidInputError("--width does not apply to --auto joint: the supernet fixes the widths")
    return {
        "bit_choices": _int_list("--bit-choices", args.bit_choices),
        "activation_bits": int(_number("--activation-bits", args.activation_bits, int, 2)),
        "baseline_bits": _int_list("--baseline-bits", args.baseline_bits),
        "recal_images": 256 if args.recal is None else int(_number("--recal", args.recal, int, 0)),
        **common,
    }


def _search_options(args: argparse.Namespace) -> dict:
    from slimforge.compress import ESTIMATES

    rerank = int(_number("--rerank", args.rerank, int, 0))
    return {
        "estimate": _estimate(args),
        "fill": not args.no_fill,
        "rerank": rerank,
        "rerank_estimate": ESTIMATES.get(args.rerank_estimate) if rerank else None,
    }


def _estimate(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import dataclasses

    from slimforge.compress import ESTIMATES

    config = ESTIMATES.get(args.estimate or "bn")
    if args.recal is not None:
        config = dataclasses.replace(config, recal_images=int(_number("--recal", args.recal, int, 0)))
    if args.estimate_steps is not None:
        steps = int(_number("--estimate-steps", args.estimate_steps, int, 0))
        config = dataclasses.replace(config, finetune_steps=steps)
    return config


def _audit_kwargs(args: argparse.Namespace, width: float | None, common: dict) -> dict:
    names = tuple(t.strip() for t in args.estimates.split(",") if t.strip())
    return {
        "estimates": names,
        "policies": int(_number("--audit-estimates", args.audit_estimates, int, 5)),
        "width": width,
        "criterion": args.criterion,
        "round_to": _round_to(args),
        **{k: v for k, v in common.items() if k not in ("progress", "search_budget", "algorithm")},
    }


#: --auto KIND -> the names in slimforge.compress of its budget keys, the key of a bare number, its search
#: function and its formatter, and the builder of the search's keyword arguments.
_AUTO = {
    "prune": ("PRUNE_BUDGET_KEYS", "latency", "auto_prune", "format_auto_prune", _prune_kwargs),
    "bits": ("BITS_BUDGET_KEYS", "size", "auto_bits", "format_auto_bits", _bits_kwargs),
    "joint": ("JOINT_BUDGET_KEYS", "bitops", "joint_search", "format_joint", _joint_kwargs),
}
_AUDIT = ("audit_estimates", "format_estimate_audit", _audit_kwargs)


def _auto(args: argparse.Namespace, width: float | None) -> int:
    import slimforge.compress as compress_api
    from slimforge.errors import UnknownNameError, close_matches

    kind = args.auto
    if kind not in _AUTO:
        hint = close_matches(kind, _AUTO)
        raise UnknownNameError(
            f"unknown --auto {kind!r}{'; did you mean ' + ', '.join(hint) + '?' if hint else ''} "
            f"(known: {', '.join(_AUTO)})"
        )
    if args.recipe:
        raise InvalidInputError("give either --recipe or --auto, not both")
    if not args.budget:
        raise InvalidInputError(f"--auto {kind} needs --budget KEY=VALUE, e.g. --budget macs=0.5")
    keys, default_key, *runner = _AUTO[kind]
    if args.audit_estimates is not None:
        if kind != "prune":
            raise InvalidInputError(
                "--audit-estimates audits the pruning search's estimates: use it with --auto prune"
            )
        runner = list(_AUDIT)
    # The budget is checked before any data or model is loaded, so a typo costs nothing.
    args.budget = compress_api.parse_budget(
        args.budget, getattr(compress_api, keys), what=f"--auto {kind}", default_key=default_key
    )
    if not args.out:
        raise InvalidInputError(
            f"--auto {kind} needs --out DIR for the chosen policy, the front and the comparison"
        )
    common = dict(
        search_budget=int(_number("--search-budget", args.search_budget, int, 1)),
        algorithm=args.algorithm,
        seed=int(_number("--seed", args.seed, int, 0)),
        **_finetune_numbers(args),
        overwrite=args.overwrite,
        progress=True,
    )
    if args.model_config is not None:
        common["model_config"] = args.model_config
    search, formatter, search_kwargs = runner
    result = getattr(compress_api, search)(args.model, args.data, args.budget, args.out,
                                           **search_kwargs(args, width, common))
    print(result.to_json() if args.json else getattr(compress_api, formatter)(result))
    if not getattr(result, "budget_met", True):
        print(f"slimforge compress: warning: {result.message}", file=sys.stderr)  # type: ignore[attr-defined]
    return 0
