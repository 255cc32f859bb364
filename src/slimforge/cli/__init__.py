"""The ``slimforge`` command: a thin layer over the Python API.

Each subcommand lives in its own module ``slimforge.cli._<name>`` exposing ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import heavy libraries inside ``run``
so that ``slimforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from slimforge import __version__
from slimforge.errors import SlimforgeError

__all__ = ["main", "build_parser"]

# name -> module; the order is the order of `slimforge --help`.
SUBCOMMANDS: dict[str, str] = {
    "demo": "slimforge.cli._demo",
    "run": "slimforge.cli._run",
    "zoo": "slimforge.cli._zoo",
    "profile": "slimforge.cli._profile",
    "search": "slimforge.cli._search",
    "bench": "slimforge.cli._bench",
    "predictor": "slimforge.cli._predictor",
    "proxy": "slimforge.cli._proxy",
    "compress": "slimforge.cli._compress",
    "supernet": "slimforge.cli._supernet",
    "measure": "slimforge.cli._measure",
    "export": "slimforge.cli._export",
    "agent": "slimforge.cli._agent",
    "lut": "slimforge.cli._lut",
    "report": "slimforge.cli._report",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="slimforge",
        description="Design small, fast neural networks for a dataset and a device.",
    )
    parser.add_argument("--version", action="version", version=f"slimforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input, with a one-line message)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SlimforgeError as exc:
        print(f"slimforge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"slimforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
