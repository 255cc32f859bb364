"""Options every subcommand spells the same way (one vocabulary), and the shared model resolution.

- ``--threads N``: threads for PyTorch and the latency runtime alike; where a command both trains and
  times, ``--torch-threads`` / ``--ort-threads`` set one of them;
- ``--train-device SPEC``: the torch device that trains or evaluates (``auto``, ``cpu``, ``cuda``,
  ``cuda:N``);
- ``--device SPEC``: only where latency is measured (``local-cpu``, ``local-litert``, ``table:FILE``,
  ``remote:URL``, ...), with ``--token-file`` / ``--timeout`` wherever a remote device is accepted;
- ``--space-arg KEY=VALUE``: a search space's constructor argument; ``--model-arg KEY=VALUE`` a
  model's; ``--set KEY=VALUE`` a setting of the chosen method (search algorithm, supernet method,
  predictor);
- ``--json``: the result as JSON.

Old spellings (``--device`` for the torch device, ``--space-option``, ``--option``, a bare device
table file) keep working for one release and print one deprecation line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from slimforge.errors import InvalidInputError

__all__ = [
    "add_local_device_option",
    "local_runtime",
    "DEVICE_HELP",
    "SET_HELP",
    "SPACE_ARG_HELP",
    "THREADS_HELP",
    "TIMEOUT_HELP",
    "TOKEN_FILE_HELP",
    "TRAIN_DEVICE_HELP",
    "add_deprecated_alias",
    "add_latency_device_options",
    "add_mlflow_option",
    "add_model_argument",
    "add_model_options",
    "add_options",
    "add_settings_option",
    "add_space_arg_option",
    "add_subcommand",
    "add_thread_options",
    "add_train_device_option",
    "deprecation",
    "key_values",
    "mlflow_log",
    "model_options",
    "remote_options",
    "set_torch_threads",
    "table_file",
    "thread_counts",
    "train_device",
    "with_mlflow",
]

THREADS_HELP = "threads for PyTorch and the latency runtime alike"
TORCH_THREADS_HELP = "PyTorch threads (training, accuracy evaluation); overrides --threads"
ORT_THREADS_HELP = "latency-runtime threads (ONNX Runtime or the --device's runtime); overrides --threads"
TRAIN_DEVICE_HELP = "torch device that trains and evaluates: auto (a GPU when there is one), cpu, cuda or cuda:N"
DEVICE_HELP = "where latency is measured"
TOKEN_FILE_HELP = "remote:URL devices: the agent's token file (or $SLIMFORGE_AGENT_TOKEN)"
TIMEOUT_HELP = "remote:URL devices: seconds to wait for a reply"
SPACE_ARG_HELP = "a search-space constructor argument, VALUE in JSON (e.g. width=0.5, stage_depths=[2,2]); repeatable"
SET_HELP = "a setting of the {what}, VALUE in JSON (e.g. {example}); repeatable"


#: one row of an option table: ``(flag, default, metavar, help)``; a metavar of None makes an on/off switch.
OptionSpec = tuple[str, str | None, str | None, str]


def add_options(parser: Any, specs: Sequence[OptionSpec]) -> None:
    """Add a table of options to ``parser`` (or an argument group) in order.

    Defaults stay strings: numbers are parsed in each command's ``run()``, so bad values give
    slimforge's one-line error rather than an argparse usage dump.
    """
    for flag, default, metavar, text in specs:
        if metavar is None:
            parser.add_argument(flag, action="store_true", help=text)
        else:
            parser.add_argument(flag, default=default, metavar=metavar, help=text)


def deprecation(old: str, new: str) -> None:
    """The one stderr line an old spelling prints."""
    print(f"slimforge: {old} is deprecated, use {new} (the old spelling goes in the next release)", file=sys.stderr)


class _DeprecatedAlias(argparse.Action):
    """An old option spelling: warns once per parse, then stores (or appends) into the new option's dest."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, replacement: str, append: bool = False,
                 **kwargs: Any) -> None:
        self.replacement, self.append = replacement, append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        seen = namespace.__dict__.setdefault("_deprecated_seen", set())
        if option_string not in seen:
            seen.add(option_string)
            deprecation(str(option_string), self.replacement)
        if self.append:
            items = list(getattr(namespace, self.dest, None) or [])
            setattr(namespace, self.dest, [*items, values])
        else:
            setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, *,
                         append: bool = False, metavar: str | None = None) -> None:
    """``old`` works like ``new`` (storing into ``dest``) for one release, hidden from ``--help``."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, replacement=new, append=append,
                        default=argparse.SUPPRESS, metavar=metavar, help=argparse.SUPPRESS)


def add_subcommand(sub: Any, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """A sub-subcommand whose ``--help`` always has a description (``help`` when none is given)."""
    return sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".")


def add_thread_options(parser: argparse.ArgumentParser, *, default: str | None = "1", default_text: str = "",
                       split: bool = False) -> None:
    """``--threads N`` (both runtimes); with ``split``, ``--torch-threads`` and ``--ort-threads`` too.

    Values stay strings here and are checked by :func:`thread_counts`, so bad input is a one-line
    error (exit 2) rather than an argparse usage dump.
    """
    shown = default_text or (default if default is not None else "each runtime's own")
    parser.add_argument("--threads", default=default, metavar="N", help=f"{THREADS_HELP} (default {shown})")
    if split:
        parser.add_argument("--torch-threads", default=None, metavar="N", help=TORCH_THREADS_HELP)
        parser.add_argument("--ort-threads", default=None, metavar="N", help=ORT_THREADS_HELP)


def _count(value: Any, flag: str) -> int | None:
    from slimforge.hardware.threads import check_thread_count

    if value is None or value == "auto":
        return None
    return check_thread_count(value, flag)


def thread_counts(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """``(torch_threads, ort_threads)`` from :func:`add_thread_options`' flags (None: not given / auto)."""
    both = _count(getattr(args, "threads", None), "--threads")
    torch_n = _count(getattr(args, "torch_threads", None), "--torch-threads")
    ort_n = _count(getattr(args, "ort_threads", None), "--ort-threads")
    return (both if torch_n is None else torch_n), (both if ort_n is None else ort_n)


def set_torch_threads(args: argparse.Namespace) -> int | None:
    """Apply the PyTorch thread count of ``args`` (when given); returns it."""
    n = thread_counts(args)[0]
    if n is not None:
        import torch

        torch.set_num_threads(n)
    return n


def add_train_device_option(parser: argparse.ArgumentParser, *, default: str | None = "auto",
                            old_device: bool = False) -> None:
    """``--train-device SPEC``; with ``old_device``, the old ``--device`` spelling as a deprecated alias."""
    shown = f" (default {default})" if default else " (default: the config's train_device, auto)"
    parser.add_argument("--train-device", default=default, metavar="SPEC", help=TRAIN_DEVICE_HELP + shown)
    if old_device:
        add_deprecated_alias(parser, "--device", "--train-device", "train_device", metavar="SPEC")


def train_device(args: argparse.Namespace, default: str = "auto") -> str:
    """The resolved torch device (``cpu``, ``cuda``, ``cuda:1``) of ``--train-device``.

    ``auto`` becomes ``cuda`` when a GPU is present; ``cuda`` without one is a one-line error that
    names the value and the fix, raised before anything is written.
    """
    from slimforge.training import resolve_train_device

    spec = getattr(args, "train_device", None) or default
    return str(resolve_train_device(spec))


def add_latency_device_options(parser: argparse.ArgumentParser, kinds: str, *, default: str | None = "local-cpu",
                               remote: bool = True, timeout: str | None = "180") -> None:
    """``--device SPEC`` (where latency is measured) and, for remote devices, ``--token-file`` / ``--timeout``."""
    shown = f" (default {default})" if default else ""
    parser.add_argument("--device", default=default, metavar="SPEC", help=f"{DEVICE_HELP}: {kinds}{shown}")
    if remote:
        parser.add_argument("--token-file", metavar="FILE", help=TOKEN_FILE_HELP)
        shown_timeout = timeout if timeout is not None else "the device's own"
        parser.add_argument("--timeout", default=timeout, metavar="S", help=f"{TIMEOUT_HELP} (default {shown_timeout})")


def add_local_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device local-*`` for commands that time a model on this machine (profile, zoo); the old
    ``--runtime NAME`` spelling is a deprecated alias."""
    parser.add_argument(
        "--device", default=None, metavar="SPEC",
        help=f"{DEVICE_HELP}: local-cpu (ONNX Runtime, default), local-torch, local-litert, local-openvino or "
        "local-executorch (a remote agent: use `slimforge measure`)",
    )
    parser.add_argument("--runtime", default=None, help=argparse.SUPPRESS)


def local_runtime(args: argparse.Namespace) -> str:
    """The latency runtime behind ``--device`` (or the deprecated ``--runtime``)."""
    from slimforge.hardware import RUNTIMES, get_device

    if args.runtime is not None:
        deprecation(f"--runtime {args.runtime}", "--device local-*")
        RUNTIMES.get(args.runtime)
        return str(args.runtime)
    spec = args.device or "local-cpu"
    if not spec.startswith("local-"):
        raise InvalidInputError(
            f"--device {spec!r}: this command times the model on this machine; give local-cpu, local-torch, "
            "local-litert, local-openvino or local-executorch (slimforge measure takes remote:URL)"
        )
    return str(get_device(spec).runtime)


def remote_options(args: argparse.Namespace) -> dict[str, Any]:
    """``{"token_file": ..., "timeout_s": ...}`` for a ``remote:URL`` ``--device``; ``{}`` for any other.

    A ``--token-file`` given with a device that is not remote is a one-line error.
    """
    device = str(getattr(args, "device", "") or "")
    token_file = getattr(args, "token_file", None)
    if not device.startswith("remote:"):
        if token_file:
            raise InvalidInputError(f"--token-file is for a remote:URL --device, not {device!r}; leave it out")
        return {}
    out: dict[str, Any] = {}
    if token_file:
        out["token_file"] = token_file
    timeout = getattr(args, "timeout", None)
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise InvalidInputError(f"--timeout must be a positive number of seconds, got {timeout!r}")
        out["timeout_s"] = seconds
    return out


def table_file(spec: str, flag: str = "--device", *, bare: str = "deprecated") -> str:
    """The file of a ``table:FILE`` device spec.

    A bare FILE still works: for one release with a deprecation line (``bare="deprecated"``), or
    silently where the option's name already says it takes a table (``bare="ok"``).
    """
    text = str(spec).strip()
    if text.startswith("table:"):
        if len(text) == len("table:"):
            raise InvalidInputError(f"{flag} {spec!r} names no file; write table:FILE")
        return text[len("table:"):]
    kind = text.partition(":")[0]
    if text.startswith("local-") or kind in ("remote", "lut", "predictor"):
        raise InvalidInputError(f"{flag} {spec!r}: this command reads a device table; write table:FILE")
    if bare == "deprecated":
        deprecation(f"{flag} FILE", f"{flag} table:FILE")
    return text


def add_space_arg_option(parser: argparse.ArgumentParser) -> None:
    """``--space-arg KEY=VALUE`` (repeatable); the old ``--space-option`` spelling as a deprecated alias."""
    parser.add_argument("--space-arg", action="append", default=[], metavar="KEY=VALUE", help=SPACE_ARG_HELP)
    add_deprecated_alias(parser, "--space-option", "--space-arg", "space_arg", append=True, metavar="KEY=VALUE")


def add_settings_option(parser: argparse.ArgumentParser, what: str, example: str, *,
                        old: str | None = None) -> None:
    """``--set KEY=VALUE`` (repeatable, dest ``settings``); ``old`` names a deprecated spelling of it."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help=SET_HELP.format(what=what, example=example))
    if old:
        add_deprecated_alias(parser, old, "--set", "settings", append=True, metavar="KEY=VALUE")


def key_values(items: Sequence[str], flag: str, example: str = "key=2") -> dict[str, Any]:
    """``["a=2", "b=x"]`` -> ``{"a": 2, "b": "x"}``: VALUEs in JSON where they parse, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"{flag} {item!r} must read KEY=VALUE, e.g. {flag} {example}")
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = text  # a bare word is a string
    return out


def add_mlflow_option(parser: argparse.ArgumentParser, text: str) -> None:
    """``--mlflow [URI]``: log the run to MLflow; a bare ``--mlflow`` gives ``""`` (the default store)."""
    parser.add_argument("--mlflow", nargs="?", const="", metavar="URI", help=text)


def mlflow_log(args: argparse.Namespace, run_dir: Any) -> Any:
    """Log ``run_dir`` to MLflow when ``--mlflow`` was given (its URI, or the default store); else None."""
    if args.mlflow is None:
        return None
    from slimforge.runs import log_run

    return log_run(run_dir, args.mlflow or None)


def with_mlflow(payload: dict[str, Any], logged: Any) -> dict[str, Any]:
    """A command's ``--json`` payload with what :func:`mlflow_log` logged (if anything) under ``mlflow``."""
    if logged is not None:
        payload["mlflow"] = logged.to_dict()
    return payload


def add_model_argument(parser: argparse.ArgumentParser, text: str) -> None:
    """The positional ``MODEL``; ``text`` says what the command accepts as one."""
    parser.add_argument("model", metavar="MODEL", help=text)


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
