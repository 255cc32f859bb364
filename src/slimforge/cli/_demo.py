"""``slimforge demo``: the main job on built-in data, no config needed.

It is ``slimforge run`` with the embedded default config :data:`DEMO_CONFIG`: scikit-learn's
digits (bundled, so nothing is downloaded), the ``mbv2`` space scaled down, this machine's CPU
with ONNX Runtime as the device. Run it again to resume or to see the summary of a finished demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimforge.cli._run import add_run_options, execute

HELP = "the main job on built-in data: supernet, search on this CPU, retrain, INT8, measure, report (~5 min)"

#: the demo's config (see ``slimforge run --print-config``); sized for a few minutes on 2 CPU cores.
DEMO_CONFIG: dict[str, Any] = {
    "data": "digits",
    "space": {
        "name": "mbv2",
        "options": {"width": 0.35, "resolution": 32, "stage_depths": [2, 2, 2, 2, 2, 1], "sharing": "elastic"},
    },
    "supernet": {"method": "spos", "epochs": 10, "batch_size": 32, "lr": 0.05},
    "accuracy": {"source": "supernet", "bn_images": 128, "calibration": {"size": 5, "epochs": 2}},
    "devices": [{"name": "cpu", "spec": "local-cpu", "cost": "lut", "threads": 1}],
    "search": {"algorithm": "nsga2", "budget": 150, "objectives": ["error", "latency_ms"]},
    "select": {"rule": "knee"},
    "retrain": {
        "mode": "finetune",
        "epochs": 3,
        "reference": ["mobilenet_v2_cifar"],
        "reference_widths": [0.35],
        "reference_epochs": 5,
    },
    "compress": {"recipe": "quantize:int8", "finetune_epochs": 0},
    "measure": {"time_cap_s": 2.0},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", metavar="RUN_DIR", help="run directory (default runs/demo)")
    # One thread by default: PyTorch's results depend on its thread count, so a timed choice would make
    # the demo's figures depend on the load it meets (BENCHMARKS issue 15, the demo).
    add_run_options(parser, threads="1", threads_text="1, so the figures repeat on any machine; auto times the fastest")


def run(args: argparse.Namespace) -> int:
    from slimforge.runs import RunConfig

    config = RunConfig.from_dict(DEMO_CONFIG)
    return execute(config, Path(args.out), args, again=" (run `slimforge demo` again to resume or re-print this)")
