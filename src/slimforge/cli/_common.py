"""Options every subcommand spells the same way (one vocabulary), and the shared model resolution.

- ``--threads N``: runtime (and, where the command trains, PyTorch) threads;
- ``--device SPEC``: where latency is measured (``local-cpu``, ``local-litert``, ``table:FILE``,
  ``remote:URL``), with ``--token-file`` for a remote device;
- ``--train-device``: the torch device training runs on (``cpu``, ``cuda``, ``cuda:N``);
- ``--model-arg KEY=VALUE`` / ``--weights FILE``: arguments and weights of a model given by reference;
- ``--json``: the result as JSON.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_model_options", "model_options"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model-arg KEY=VALUE`` (repeatable) and ``--weights FILE`` for a MODEL given by reference."""
    parser.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an argument of a zoo model or of your factory (MODEL = path/to/file.py:factory or "
        "package.module:factory), e.g. --model-arg width=0.5; repeat for more",
    )
    parser.add_argument(
        "--weights", metavar="FILE", help="a state_dict file (read with weights_only=True) for the MODEL's network"
    )


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``{"model_args": ..., "weights": ...}`` from :func:`add_model_options`'s flags."""
    from slimforge.io import parse_model_args

    return {"model_args": parse_model_args(getattr(args, "model_arg", [])), "weights": getattr(args, "weights", None)}
