"""``slimforge export``: convert a model to a deployment format and check the converted file against it."""

from __future__ import annotations

import argparse
import json

from slimforge.cli._common import (
    OptionSpec,
    add_model_argument,
    add_model_options,
    add_options,
    add_thread_options,
    model_options,
)

HELP = (
    "export a model to onnx, tflite (LiteRT), openvino, executorch, rknn or torchscript, FP32 or INT8, "
    "and check the converted file's outputs against the model"
)


# fmt: off
_CHECK_OPTIONS: tuple[OptionSpec, ...] = (
    ("--int8", None, None, ("quantize with the format's own quantizer, calibrated on --data's training images")),
    ("--data", None, "SPEC", ("data (e.g. npz:FILE): the check runs on its test split (validation if none); "
        "without it, on seeded noise")),
    ("--input", None, "SHAPE", "input shape, e.g. 1x3x32x32 (default: the model's own)"),
    ("--calib", "128", "N", "--int8: training images to calibrate on (default 128)"),
    ("--min-agreement", None, "PCT", ("least top-1 agreement with the model, in percent (default 99 for "
        "FP32, 90 for INT8)")),
    ("--no-check", None, None, "convert only; do not run the converted file"),
)
_TARGET_OPTIONS: tuple[OptionSpec, ...] = (
    ("--seed", "0", "N", "seed of the data split and calibration draw"),
    ("--rknn-python", None, "PYTHON", ("rknn: the Python of an environment with rknn-toolkit2 (it cannot be "
        "installed beside torch 2.13)")),
    ("--rknn-target", None, "SOC", "rknn: the target platform (default rk3588)"),
    ("--json", None, None, "print the result as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are parsed in run(), not by argparse, so bad values give slimforge's one-line error.
    add_model_argument(parser, "a zoo model name, a saved slimforge model directory, or a .onnx file")
    parser.add_argument(
        "--format",
        required=True,
        metavar="FORMAT",
        help="onnx, tflite, openvino, executorch, rknn or torchscript",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for model.<ext> and export.json")
    add_options(parser, _CHECK_OPTIONS)
    add_thread_options(parser)
    add_options(parser, _TARGET_OPTIONS)
    add_model_options(parser)


def run(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int, resolve_model
    from slimforge.errors import InvalidInputError
    from slimforge.hardware import parse_input_shape
    from slimforge.hardware.export import EXPORTERS, export_model

    EXPORTERS.get(args.format)  # an unknown format stops here, before the model is built
    threads = parse_int("--threads", args.threads, 1)
    seed = parse_int("--seed", args.seed, 0)
    calib = parse_int("--calib", args.calib, 1)
    threshold = None
    if args.min_agreement is not None:
        try:
            threshold = float(args.min_agreement)
        except ValueError:
            raise InvalidInputError(
                f"--min-agreement must be a percentage such as 99, got {args.min_agreement!r}"
            ) from None
    if args.int8 and args.data is None:
        raise InvalidInputError("--int8 calibrates on real images: give --data SPEC (e.g. npz:FILE)")
    options = {k: v for k, v in (("rknn_python", args.rknn_python), ("rknn_target", args.rknn_target)) if v}
    if options and args.format != "rknn":
        raise InvalidInputError(f"--rknn-python and --rknn-target are for --format rknn, not {args.format}")
    requested = parse_input_shape(args.input) if args.input is not None else None
    model, _, default_shape = resolve_model(args.model, **model_options(args))
    result = export_model(
        model,
        args.format,
        args.out,
        input_shape=requested or default_shape,
        precision="int8" if args.int8 else "fp32",
        data=args.data,
        num_calibration=calib,
        min_agreement_pct=threshold,
        check=not args.no_check,
        threads=threads,
        seed=seed,
        options=options,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"wrote     {', '.join(result.files)} ({result.size_bytes:,} B)")
    if result.quantizer:
        print(f"int8      {result.quantizer}")
    if result.checked:
        print(
            f"checked   by {result.checked_by} on {result.num_check_images} images ({result.check_data}) "
            f"against {result.reference}"
        )
        print(
            f"agreement {result.top1_agreement_pct:.2f}% top-1 (threshold {result.min_agreement_pct:g}%), "
            f"max |diff| {result.max_abs_diff:.3g}, mean |diff| {result.mean_abs_diff:.3g}"
        )
        if result.top1_pct is not None:
            print(f"accuracy  {result.top1_pct:.2f}% top-1 (reference {result.reference_top1_pct:.2f}%)")
    else:
        print(f"checked   no: {result.note}")
    return 0
