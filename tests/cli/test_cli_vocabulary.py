"""One option vocabulary across every subcommand (issue 19 item 4, issue 22 item 1).

The parser tree is walked, so a subcommand added later is checked the day it is registered.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from slimforge.cli import build_parser, main
from slimforge.cli import _common as common
from slimforge.errors import InvalidInputError


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every leaf (sub)command parser by its command line, e.g. ``"supernet train"``."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and path:
            out[" ".join(path)] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*path, name))

    walk(build_parser(), ())
    return out


PARSERS = _parsers()


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The visible options of ``parser`` by spelling (deprecated aliases are hidden from --help)."""
    return {
        s: a
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        for s in a.option_strings
    }


def _deprecated(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions if a.help == argparse.SUPPRESS and a.option_strings for s in a.option_strings}


#: spelling -> (dest, the help every command starts it with)
SHARED = {
    "--threads": ("threads", common.THREADS_HELP),
    "--torch-threads": ("torch_threads", common.TORCH_THREADS_HELP),
    "--ort-threads": ("ort_threads", common.ORT_THREADS_HELP),
    "--train-device": ("train_device", common.TRAIN_DEVICE_HELP),
    "--device": ("device", common.DEVICE_HELP),
    "--token-file": ("token_file", common.TOKEN_FILE_HELP),
    "--timeout": ("timeout", common.TIMEOUT_HELP),
    "--space-arg": ("space_arg", common.SPACE_ARG_HELP),
    "--set": ("settings", "a setting of the "),
    "--model-arg": ("model_arg", "an argument of a zoo model or of your factory"),
}
#: the agent's own token file is the server's secret, not a client's option: the one exception.
EXEMPT = {("agent serve", "--token-file")}
#: where something trains or evaluates with PyTorch on a device of the user's choosing.
TRAINS = ("run", "demo", "compress", "supernet train", "supernet rank", "supernet standalone",
          "bench codesign", "bench spaces", "search")


def test_every_subcommand_is_found_and_described():
    assert {"run", "demo", "compress", "search", "measure", "supernet train", "agent serve", "lut build"} <= set(PARSERS)
    for name, parser in PARSERS.items():
        assert parser.description, f"slimforge {name} --help has no description"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_shared_options_mean_the_same_everywhere(name):
    options = _options(PARSERS[name])
    for spelling, (dest, help_start) in SHARED.items():
        action = options.get(spelling)
        if action is None or (name, spelling) in EXEMPT:
            continue
        assert action.dest == dest, f"{name} {spelling}: dest {action.dest!r}, expected {dest!r}"
        assert action.help.startswith(help_start), f"{name} {spelling}: help {action.help!r}"
    for spelling in ("--set", "--space-arg", "--model-arg"):
        if spelling in options:
            assert isinstance(options[spelling], argparse._AppendAction), f"{name} {spelling} is not repeatable"
            assert options[spelling].metavar == "KEY=VALUE"
    if "--json" in options:
        assert isinstance(options["--json"], argparse._StoreTrueAction)
    # the old spellings are not offered any more, only accepted
    assert not {"--space-option", "--option", "--device-spec"} & set(options)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_kind_of_option_is_where_it_belongs(name):
    options = _options(PARSERS[name])
    if name in TRAINS:
        assert "--train-device" in options, f"{name} trains but has no --train-device"
    device = options.get("--device")
    if device is not None:
        assert "torch device" not in device.help, f"{name}: --device is the latency device only"
        if "remote:" in device.help:
            assert {"--token-file", "--timeout"} <= set(options), f"{name} takes remote:URL but no --token-file"
        if "local-" in device.help:
            assert "--threads" in options, f"{name} measures latency but has no --threads"
    if "--train-device" in options and ("--device" in options or name in ("bench spaces", "bench codesign")):
        assert {"--torch-threads", "--ort-threads"} <= set(options), f"{name}: both runtimes matter"
    for spelling in ("--torch-threads", "--ort-threads"):
        if spelling in options:
            assert "--threads" in options, f"{name}: {spelling} without --threads"


def test_the_old_spellings_are_kept_as_hidden_aliases():
    assert _deprecated(PARSERS["supernet train"]).keys() >= {"--device", "--option", "--space-option"}
    assert _deprecated(PARSERS["supernet rank"]).keys() >= {"--device"}
    assert _deprecated(PARSERS["lut build"]).keys() >= {"--space-option"}


def _parse(argv, capsys):
    args = build_parser().parse_args(argv)
    return args, capsys.readouterr().err


def test_deprecated_device_sets_the_train_device_with_one_line(capsys):
    args, err = _parse(["supernet", "train", "--data", "digits", "--epochs", "1", "--out", "x", "--device", "cpu"],
                       capsys)
    assert args.train_device == "cpu"
    assert err.count("\n") == 1 and "--device is deprecated, use --train-device" in err


def test_deprecated_option_and_space_option_append_and_warn_once(capsys):
    args, err = _parse(["supernet", "train", "--data", "digits", "--epochs", "1", "--out", "x",
                        "--option", "order=2", "--option", "warmup=0.5", "--set", "a=1",
                        "--space-option", "width=0.5", "--space-arg", "resolution=32"], capsys)
    assert args.settings == ["order=2", "warmup=0.5", "a=1"]
    assert args.space_arg == ["width=0.5", "resolution=32"]
    lines = err.splitlines()
    assert len(lines) == 2
    assert any("--option is deprecated, use --set" in line for line in lines)
    assert any("--space-option is deprecated, use --space-arg" in line for line in lines)


def test_new_spellings_print_nothing(capsys):
    args, err = _parse(["lut", "build", "--out", "t.csv", "--space-arg", "width=0.5", "--threads", "2"], capsys)
    assert err == "" and args.space_arg == ["width=0.5"]
    assert common.key_values(args.space_arg, "--space-arg") == {"width": 0.5}


def test_a_device_table_is_table_file_everywhere(capsys, tmp_path):
    path = str(tmp_path / "dev.csv")
    assert common.table_file(f"table:{path}") == path
    assert capsys.readouterr().err == ""
    assert common.table_file(path) == path  # the old bare FILE, for one release
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deprecated" in err and "table:FILE" in err
    assert common.table_file(path, "--device-table", bare="ok") == path
    assert capsys.readouterr().err == ""
    for spec in ("local-cpu", "remote:http://h:1", "table:"):
        with pytest.raises(InvalidInputError, match="table:FILE"):
            common.table_file(spec)


def test_threads_split_where_both_runtimes_matter():
    parse = build_parser().parse_args
    assert common.thread_counts(parse(["compress", "m", "--threads", "3"])) == (3, 3)
    assert common.thread_counts(parse(["compress", "m", "--threads", "3", "--ort-threads", "1"])) == (3, 1)
    assert common.thread_counts(parse(["compress", "m", "--torch-threads", "2"])) == (2, 1)
    assert common.thread_counts(parse(["run", "c.yaml"])) == (None, None)  # auto
    with pytest.raises(InvalidInputError, match="--ort-threads"):
        common.thread_counts(parse(["compress", "m", "--ort-threads", "zero"]))


def test_token_file_goes_with_a_remote_device_only():
    parse = build_parser().parse_args
    args = parse(["search", "--device", "remote:http://127.0.0.1:9", "--token-file", "t", "--timeout", "5"])
    assert common.remote_options(args) == {"token_file": "t", "timeout_s": 5.0}
    with pytest.raises(InvalidInputError, match="--token-file is for a remote:URL --device"):
        common.remote_options(parse(["search", "--device", "local-cpu", "--token-file", "t"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
@pytest.mark.parametrize(
    "argv",
    [
        ["supernet", "train", "--data", "digits", "--epochs", "1", "--train-device", "cuda", "--out", "{out}"],
        ["compress", "resnet20", "--train", "--epochs", "1", "--train-device", "cuda", "--out", "{out}"],
        ["demo", "--train-device", "cuda", "--out", "{out}"],
        ["bench", "spaces", "--train-device", "cuda:0", "--out", "{out}"],
        ["search", "--accuracy", "supernet:{out}", "--train-device", "cuda", "--out", "{out}"],
    ],
    ids=["supernet", "compress", "demo", "bench", "search"],
)
def test_train_device_cuda_without_a_gpu_is_one_line_and_writes_nothing(argv, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([a.format(out=out) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "--train-device 'cuda" in err and "--train-device cpu" in err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_train_device_in_the_config_is_checked_before_the_run_dir_is_made(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train_device: cuda\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train_device 'cuda'" in err
    assert not out.exists()
    config.write_text("train_device: gpu\n", encoding="utf-8")
    assert main(["run", str(config), "--out", str(out)]) == 2
    assert "train_device must be auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


def test_the_demo_trains_on_one_thread_by_default_and_run_times_the_fastest():
    """The demo's figures must not depend on the load it meets: PyTorch's results depend on its
    thread count, so the demo pins one thread; ``run`` keeps the timed choice."""
    assert PARSERS["demo"].parse_args([]).threads == "1"
    assert PARSERS["run"].parse_args(["config.yaml"]).threads == "auto"
    assert PARSERS["demo"].parse_args(["--threads", "auto"]).threads == "auto"
