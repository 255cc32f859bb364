"""``slimforge zoo``: list the model zoo."""

from __future__ import annotations

import argparse
import json

HELP = "list the hand-designed models of the zoo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the names as a JSON list")


def run(args: argparse.Namespace) -> int:
    from slimforge.zoo import list_models

    names = list_models()
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0
