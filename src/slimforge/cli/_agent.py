"""``slimforge agent``: the measurement agent of an edge device (serve), its token, and a connection check."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys

from slimforge.cli._common import TIMEOUT_HELP, TOKEN_FILE_HELP, OptionSpec, add_options, add_subcommand
from slimforge.errors import InvalidInputError

HELP = (
    "run the measurement agent on an edge device (serve), make its token (token), check a connection "
    "(info), load-test it (bench)"
)


# fmt: off
_SERVE_OPTIONS: tuple[OptionSpec, ...] = (
    ("--max-upload-mb", "64", "MB", "largest accepted model (default 64 MiB)"),
    ("--max-seconds", "120", "S", "time limit of one measurement request (default 120)"),
    ("--max-threads", None, "N", ("most intra-op threads a request may ask for (default: this machine's "
        "logical cores)")),
    ("--max-input-elements", None, "N", ("most elements of a request's input tensor (default 16777216, 64 "
        "MiB of float32)")),
    ("--max-memory-mb", None, "MB", ("memory a measurement may take (default: half this machine's, at most "
        "4096)")),
    ("--max-connections", None, "N", ("connections served at once; more get 503 with Retry-After (default 64)")),
    ("--quiet", None, None, "do not log requests on stderr"),
)
_INFO_OPTIONS: tuple[OptionSpec, ...] = (
    ("--token-file", None, "FILE", TOKEN_FILE_HELP),
    ("--timeout", "30", "S", f"{TIMEOUT_HELP} (default 30)"),
    ("--json", None, None, "print the reply as JSON"),
)
_BENCH_OPTIONS: tuple[OptionSpec, ...] = (
    ("--requests", "200", "N", "sequential requests (default 200)"),
    ("--concurrent", "50", "N", "concurrent requests (default 50)"),
    ("--max-seconds", "3", "S", "the agent's limit per measurement (default 3)"),
    ("--json", None, None, "print the result as JSON"),
)
# fmt: on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", metavar="ACTION")
    serve = add_subcommand(
        sub, "serve", "measure uploaded ONNX models on this device over HTTP",
        "Serve latency measurements over HTTP on this device: clients (search, measure, lut, compress, "
        "run with a remote:http://HOST:PORT device) upload a model with the token and get its measured "
        "latency back; every request runs under the --max-* limits.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)"
    )
    serve.add_argument(
        "--port", default="8765", metavar="P", help="TCP port (default 8765; 0 picks a free one)"
    )
    serve.add_argument(
        "--token-file", required=True, metavar="FILE", help="file holding the token clients must send"
    )
    add_options(serve, _SERVE_OPTIONS)
    token = add_subcommand(
        sub, "token", "write a new random token to a file (owner-readable only)",
        "Write a new random token to --out, readable by its owner only: give the same file to "
        "'agent serve --token-file' on the device and to '--token-file' of the commands that use it.",
    )
    token.add_argument("--out", required=True, metavar="FILE", help="the token file to create")
    info = add_subcommand(sub, "info", "ask a running agent what device it is (checks the URL and token)")
    info.add_argument("device", metavar="remote:URL", help="e.g. remote:http://127.0.0.1:8765")
    add_options(info, _INFO_OPTIONS)
    bench = add_subcommand(
        sub, "bench",
        "start an agent on 127.0.0.1, send it a runaway model, then sequential and concurrent "
        "requests, and count the answers",
    )
    add_options(bench, _BENCH_OPTIONS)


def run(args: argparse.Namespace) -> int:
    if args.agent_command is None:
        raise InvalidInputError(
            "give an action: slimforge agent serve | token | info | bench (see slimforge agent --help)"
        )
    return {"serve": _serve, "token": _token, "info": _info, "bench": _bench}[args.agent_command](args)


def _serve(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int, parse_seconds
    from slimforge.hardware.agent import AgentLimits, AgentServer, read_token

    port = parse_int("--port", args.port, 0)
    if port > 65535:
        raise InvalidInputError(f"--port must be at most 65535, got {port}")
    max_mb = _positive("--max-upload-mb", args.max_upload_mb, "megabytes")
    limits = AgentLimits(
        max_upload_bytes=int(max_mb * 2**20),
        max_seconds=parse_seconds("--max-seconds", args.max_seconds),
        max_threads=0 if args.max_threads is None else parse_int("--max-threads", args.max_threads, 1),
        max_input_elements=(
            AgentLimits.max_input_elements
            if args.max_input_elements is None
            else parse_int("--max-input-elements", args.max_input_elements, 1)
        ),
        max_memory_bytes=(
            0
            if args.max_memory_mb is None
            else int(_positive("--max-memory-mb", args.max_memory_mb, "megabytes") * 2**20)
        ),
        max_connections=(
            AgentLimits.max_connections
            if args.max_connections is None
            else parse_int("--max-connections", args.max_connections, 1)
        ),
    )
    server = AgentServer(
        read_token(args.token_file), args.host, port, limits=limits, log=None if args.quiet else sys.stderr
    )
    if not _is_loopback(args.host):
        print(
            f"slimforge agent: warning: listening on {args.host}, beyond this machine; "
            "the token travels in clear "
            "text over HTTP, so use a trusted network",
            file=sys.stderr,
        )
    print(
        f"slimforge agent: listening on {server.url} (uploads up to {max_mb:g} MiB, "
        f"{limits.max_seconds:g} s and {limits.max_memory_bytes / 2**20:.0f} MiB per measurement, "
        f"at most {limits.max_threads} threads, one measurement at a time); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


def _positive(flag: str, text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise InvalidInputError(f"{flag} must be a positive number of {unit}, got {text!r}")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(args: argparse.Namespace) -> int:
    from slimforge.hardware.agent import write_token

    write_token(args.out)
    print(f"wrote a new token to {args.out}; give the same file to `slimforge agent serve` and to clients")
    return 0


def _info(args: argparse.Namespace) -> int:
    from slimforge.cli._measure import open_device

    if not args.device.startswith("remote:"):
        raise InvalidInputError(f"{args.device!r} is not a remote device; write remote:http://HOST:PORT")
    reply = open_device(args.device, args.token_file, args.timeout).info()
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    d, limits = reply["device"], reply["limits"]
    print(
        f"agent     {args.device[len('remote:') :]} "
        f"(slimforge {reply.get('slimforge')}, API {reply.get('api')})"
    )
    print(
        f"device    {d.get('cpu_model')} ({d.get('cpu_count')} logical cores), "
        f"host {d.get('hostname')}, {d.get('platform')}"
    )
    print(f"runtime   {d.get('runtime')} {d.get('runtime_version')}")
    print(
        f"limits    uploads up to {limits.get('max_upload_bytes')} bytes, "
        f"{limits.get('max_seconds')} s per request"
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from slimforge.cli._profile import parse_int, parse_seconds
    from slimforge.hardware.agent import bench_agent

    result = bench_agent(
        sequential=parse_int("--requests", args.requests, 1),
        concurrent=parse_int("--concurrent", args.concurrent, 1),
        max_seconds=parse_seconds("--max-seconds", args.max_seconds),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:

        def counts(phase: dict[str, int]) -> str:
            return ", ".join(f"{n} x {k}" for k, n in sorted(phase.items())) or "-"

        print(f"machine     {result.machine}")
        print(f"date        {result.date}; agent --max-seconds {result.max_seconds:g}")
        print(f"runaway     {counts(result.runaway)} after {result.runaway_s:.2f} s")
        print(f"sequential  {counts(result.sequential)} in {result.sequential_s:.2f} s")
        print(f"concurrent  {counts(result.concurrent)} in {result.concurrent_s:.2f} s")
        print(f"oversized   {counts(result.oversized)}")
        print(f"after       {counts(result.after)}")
        print(f"no status   {result.failures} (resets, broken pipes, timeouts)")
    return 0 if result.failures == 0 else 1
