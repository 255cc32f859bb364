"""``slimforge bench``: under construction in this working tree (replaced before commit)."""

from __future__ import annotations

import argparse

from slimforge.errors import SlimforgeError

HELP = "bench (being built)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise SlimforgeError("'bench' is being built in this working tree")
