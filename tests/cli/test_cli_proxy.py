"""``slimforge proxy``: the report, its JSON, the cache, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from slimforge.cli import main
from slimforge.estimators import ProxyReport
from slimforge.spaces import get_space

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# Small cells first: a table of architectures whose accuracy follows their number of 3x3 convolutions.
ARCHS = [
    (0, 0, 0, 0, 0, 0),
    (1, 1, 1, 1, 1, 1),
    (2, 1, 1, 2, 1, 1),
    (3, 1, 1, 2, 1, 1),
    (3, 3, 1, 3, 1, 1),
    (3, 3, 3, 3, 3, 3),
]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the command sets its own thread count


pytestmark = pytest.mark.usefixtures("progress_lines")


@pytest.fixture
def table(tmp_path) -> Path:
    space = get_space("nb201")
    path = tmp_path / "acc.csv"
    lines = ["index,arch,accuracy"] + [
        f"{i},{space.to_string(g)},{10.0 + 14.0 * i}" for i, g in enumerate(ARCHS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys, *argv):
    code = main(["proxy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_json_report_ranks_every_proxy_and_ensemble(capsys, table, tmp_path):
    argv = [
        "--data",
        "digits",
        "--table",
        str(table),
        "--sample",
        "6",
        "--batch-size",
        "4",
        "--proxies",
        "num_params,synflow,naswot",
        "--ensemble",
        "rank_average:num_params+naswot",
        "--ensemble",
        "vote:num_params+synflow+naswot",
        "--cache",
        str(tmp_path / "cache"),
        "--json",
        "--scores",
    ]
    code, out, err = _run(capsys, *argv)
    assert code == 0
    report = json.loads(out)
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == [
        "num_params",
        "synflow",
        "naswot",
        "rank_average:num_params+naswot",
        "vote:num_params+synflow+naswot",
    ]
    # The all-'none' cell has no path from input to output: NASWOT's kernel is singular.
    assert rows["naswot"]["num_inf"] == 1 and rows["naswot"]["num_archs"] == 5
    assert report["scores"]["scores"]["naswot"].count("-inf") == 1
    assert rows["num_params"]["num_archs"] == 6 and rows["num_params"]["spearman_rho"] > 0.8
    assert all(r["cpu_s_per_arch"] > 0 for r in rows.values())
    assert "arch" in err  # the progress bar goes to stderr
    assert len(list((tmp_path / "cache").glob("*.csv"))) == 1
    code, again, _ = _run(capsys, *argv)  # from the cache: the same report
    assert code == 0 and json.loads(again)["rows"] == report["rows"]
    parsed = ProxyReport.from_dict(report)
    assert parsed.to_dict(with_scores=True) == report
    assert (
        parsed.scores.array("naswot")[parsed.scores.archs.index(get_space("nb201").to_string(ARCHS[0]))]
        == -math.inf
    )


def test_table_output(capsys, table):
    code, out, _ = _run(
        capsys,
        "--data",
        "digits",
        "--table",
        str(table),
        "--sample",
        "3",
        "--batch-size",
        "2",
        "--proxies",
        "num_params",
        "--no-progress",
    )
    assert code == 0
    assert "rho" in out and "num_params" in out and "cpu s/arch" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--proxies", "naswott"], "unknown proxy 'naswott'; did you mean naswot"),
        (["--ensemble", "median:naswot+synflow"], "start with a rule"),
        (["--ensemble", "vote:naswot"], "at least two different proxies"),
        (["--sample", "99"], "cannot sample 99 architectures from a table of 6"),
        (["--batch-size", "1"], "batch_size must be an int >= 2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, table, extra, message):
    code, _, err = _run(
        capsys, "--data", "digits", "--table", str(table), "--sample", "2", "--no-progress", *extra
    )
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_table_is_reported(capsys, tmp_path):
    code, _, err = _run(capsys, "--data", "digits", "--table", str(tmp_path / "none.csv"), "--no-progress")
    assert code == 2 and "no such file" in err


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "nb201" / "accuracy_cifar10.csv").exists(), reason="../shared/data is absent")
def test_real_table_and_cifar_minibatch(capsys):
    code, out, _ = _run(
        capsys,
        "--space",
        "nb201",
        "--data",
        f"npz:{DATA / 'cifar10_subset.npz'}",
        "--table",
        str(DATA / "nb201" / "accuracy_cifar10.csv"),
        "--sample",
        "5",
        "--seed",
        "0",
        "--batch-size",
        "8",
        "--proxies",
        "synflow,num_params",
        "--json",
        "--no-progress",
    )
    assert code == 0
    report = json.loads(out)
    assert report["sample"] == 5 and report["canonical"] is True
    assert {r["name"] for r in report["rows"]} == {"synflow", "num_params"}
    assert all(r["num_archs"] == 5 for r in report["rows"])
