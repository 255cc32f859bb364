"""Search evaluators: a contract over EVALUATORS.list(), each source on tiny real inputs, build_problem
specs, a measured search end to end, and the CLI with --accuracy."""

from __future__ import annotations

import itertools
import json
import math
import pickle

import numpy as np
import pytest

from slimforge.cli import main
from slimforge.errors import InvalidInputError, UnknownNameError
from slimforge.hardware.lut import LUT_FORMAT, LatencyTable, LutEntry
from slimforge.search import EVALUATORS, build_problem, make_evaluator, minimize
from slimforge.search.tables import write_arch_table
from slimforge.spaces import get_space

TINY_NB201 = {"channels": 4, "cells_per_stage": 1}
TINY_MBV2 = {"width": 0.35, "resolution": 32, "stage_depths": [1, 1, 1, 1, 1, 1]}
GENOME = (3, 1, 2, 3, 0, 4)
QUICK_S = 0.05  # time cap of a measured latency in these tests


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201", **TINY_NB201)


@pytest.fixture(scope="module")
def mbv2():
    return get_space("mbv2", **TINY_MBV2)


@pytest.fixture(scope="module")
def files(tmp_path_factory, nb201, mbv2):
    """Every file an evaluator reads: tables, a tiny trained supernet, predictors, a lookup table."""
    from slimforge.estimators import get_predictor
    from slimforge.hardware.predictors import create_predictor
    from slimforge.supernet import TrainConfig, train_supernet

    root = tmp_path_factory.mktemp("evaluators")
    rng = np.random.default_rng(0)
    genomes = list(itertools.product(range(5), repeat=6))
    acc = rng.uniform(10, 95, len(genomes))
    write_arch_table(
        root / "acc.csv", [(i, nb201.to_string(g), [acc[i]]) for i, g in enumerate(genomes)], ["accuracy"]
    )
    write_arch_table(
        root / "dev.csv",
        [(i, nb201.to_string(g), [1.0 + sum(g), 2.0]) for i, g in enumerate(genomes)],
        ["latency_ms", "energy_mj"],
    )
    # A real (random-pixel) data set: 4 classes, 32 training and 8 test images of 16x16.
    np.savez(
        root / "tiny.npz",
        x_train=rng.integers(0, 256, (32, 3, 16, 16), dtype=np.uint8),
        y_train=np.arange(32, dtype=np.int64) % 4,
        x_test=rng.integers(0, 256, (8, 3, 16, 16), dtype=np.uint8),
        y_test=np.arange(8, dtype=np.int64) % 4,
    )
    config = TrainConfig(
        data=f"npz:{root / 'tiny.npz'}", epochs=1, space_kwargs=TINY_NB201, batch_size=8, val_fraction=0.25
    )
    train_supernet(config, root / "supernet", stop_after_steps=2)
    train = [nb201.sample(np.random.default_rng(s)) for s in range(12)]
    get_predictor("gbm", n_estimators=10).fit(train, [acc[genomes.index(g)] for g in train]).save(
        root / "acc_predictor.json"
    )
    create_predictor("ridge", features=TINY_NB201).fit(train, [1.0 + sum(g) for g in train]).save(
        root / "lat_predictor.json"
    )
    tiny_lut(mbv2).save(root / "lut.csv")
    return root


def tiny_lut(space) -> LatencyTable:
    """A hand-made lookup table of ``space``: layer i choice c costs 0.1 (i + 1) + 0.01 c ms."""
    shape = (1, 3, 32, 32)
    entries = [
        LutEntry("call", None, None, "call", shape, 0.005, 0.0, 0.005, 100, True),
        LutEntry("stem", None, None, "stem", shape, 0.4, 0.0, 0.4, 100, True),
        LutEntry("tail", None, None, "tail", (1, 8, 1, 1), 0.3, 0.0, 0.3, 100, True),
    ]
    for i, n in enumerate(space.num_choices):
        for c in range(n):
            ms = 0.1 * (i + 1) + 0.01 * c
            entries.append(LutEntry("layer", i, c, f"c{c}", shape, ms, 0.0, ms, 10, True))
    header = {
        "format": LUT_FORMAT,
        "space": "mbv2",
        "space_options": json.dumps(TINY_MBV2, sort_keys=True),
        "device": "local-cpu",
        "runtime": "onnxruntime",
        "threads": "1",
        "input_shape": "1x3x32x32",
        "num_classes": "10",
    }
    return LatencyTable("mbv2", dict(TINY_MBV2), header, tuple(entries))


def case(name, files, nb201, mbv2, tmp_path):
    """(space, options, genome) that make evaluator ``name`` run on tiny inputs."""
    cases = {
        "accuracy_table": (nb201, {"path": files / "acc.csv"}),
        "device_table": (nb201, {"path": files / "dev.csv"}),
        "supernet_accuracy": (nb201, {"checkpoint": files / "supernet", "bn_images": 8, "batch_size": 4}),
        "proxy": (nb201, {"proxies": "jacob_cov,num_params", "batch_size": 4, "reference": 3}),
        "predictor": (nb201, {"path": files / "acc_predictor.json"}),
        "measured_latency": (nb201, {"time_cap_s": QUICK_S, "store_path": tmp_path / "cache"}),
        "lut_latency": (mbv2, {"path": files / "lut.csv"}),
        "latency_predictor": (nb201, {"path": files / "lat_predictor.json"}),
        "num_params": (nb201, {}),
        "calibrated_accuracy": (nb201, {
            "members": {"num_params": make_evaluator("num_params", nb201)},
            "blend": {"members": ["num_params"], "means": [5.0], "stds": [0.5], "weights": [3.0],
                      "intercept": 80.0, "alpha": 1.0},
        }),
        "macs": (nb201, {}),
        "peak_memory": (nb201, {}),
        "model_size": (nb201, {"weight_bits": 8}),
    }
    if name not in cases:
        pytest.fail(f"evaluator {name!r} has no contract case: add one here")
    space, options = cases[name]
    genome = GENOME if space is nb201 else tuple(min(1, n - 1) for n in space.num_choices)
    return space, options, genome


# -------------------------------------------------------------------------------- the contract
# Measuring takes a second or two even with a short cap: the contract case of a measured device is slow.
_SLOW_CONTRACT = {"measured_latency", "supernet_accuracy"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if n in _SLOW_CONTRACT else []) for n in EVALUATORS.list()],
)
def test_evaluator_contract(name, files, nb201, mbv2, tmp_path):
    space, options, genome = case(name, files, nb201, mbv2, tmp_path)
    ev = make_evaluator(name, space, **options)
    fresh = pickle.dumps(ev)  # before first use
    first = ev.evaluate(genome)
    assert set(ev.metrics) <= set(first)
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.values()), first
    assert ev.evaluate(genome) == first
    assert ev.evaluate_many([genome, genome]) == [first, first]
    assert pickle.loads(fresh).evaluate(genome) == first
    assert pickle.loads(pickle.dumps(ev)).evaluate(genome) == first  # after first use
    assert json.loads(json.dumps(ev.describe()))["kind"] == type(ev).__name__


def test_make_evaluator_names_the_options_it_takes(nb201):
    with pytest.raises(InvalidInputError, match="it takes: input_shape, num_classes"):
        make_evaluator("macs", nb201, shape="1x3x32x32")
    with pytest.raises(UnknownNameError, match="did you mean macs"):
        make_evaluator("mac", nb201)


# ------------------------------------------------------------------------------------ sources
@pytest.mark.parametrize(("split", "val_fraction"), [("test", None), ("val", 0.5)])
def test_supernet_accuracy_is_the_inherited_weight_score(files, nb201, split, val_fraction):
    from slimforge.data import load_dataset
    from slimforge.supernet import EvalData, load_supernet, score_many

    supernet, config, _ = load_supernet(files / "supernet")
    splits = load_dataset(config.data, val_fraction=val_fraction or config.val_fraction, seed=config.seed)
    data = EvalData.from_splits(
        splits, split=split, recal_images=8, seed=0, recal_batch_size=config.batch_size
    )
    genomes = [GENOME, (0, 2, 1, 1, 3, 3)]
    expected = [100.0 * s.accuracy for s in score_many(supernet, genomes, data)]
    ev = make_evaluator(
        "supernet_accuracy",
        nb201,
        checkpoint=files / "supernet",
        split=split,
        val_fraction=val_fraction,
        bn_images=8,
        finetune_steps=0,
    )
    got = ev.evaluate_many(genomes)
    assert [v["accuracy"] for v in got] == pytest.approx(expected)
    assert all(v["error"] == pytest.approx(100.0 - v["accuracy"]) for v in got)


def test_supernet_accuracy_on_a_subset_of_the_images(files, nb201):
    subset = make_evaluator("supernet_accuracy", nb201, checkpoint=files / "supernet", eval_images=3)
    accuracy = subset.evaluate(GENOME)["accuracy"]
    assert any(accuracy == pytest.approx(100 * k / 3) for k in range(4))  # 3 images: k of them right
    with pytest.raises(InvalidInputError, match="split"):
        make_evaluator("supernet_accuracy", nb201, checkpoint=files / "supernet", split="train")


def test_supernet_accuracy_refuses_another_space(files, mbv2, tmp_path):
    with pytest.raises(InvalidInputError, match="--space nb201"):
        make_evaluator("supernet_accuracy", mbv2, checkpoint=files / "supernet")
    with pytest.raises(Exception, match="does not exist"):
        make_evaluator("supernet_accuracy", get_space("nb201"), checkpoint=tmp_path)


def test_proxy_score_follows_the_proxy_and_is_per_genome(nb201):
    ev = make_evaluator("proxy", nb201, proxies="num_params", batch_size=2, reference=4)
    small, large = (1, 1, 1, 1, 1, 1), (3, 3, 3, 3, 3, 3)  # skips vs. 3x3 convolutions
    assert ev.evaluate(large)["proxy_score"] > ev.evaluate(small)["proxy_score"]
    assert ev.evaluate(large)["proxy_score_neg"] == -ev.evaluate(large)["proxy_score"]
    # The same genome scores the same whatever it is evaluated with (no set-relative ranks).
    assert ev.evaluate_many([small, large])[1] == ev.evaluate(large)


@pytest.mark.parametrize(
    "proxies, match",
    [
        ("warp", "unknown proxy 'warp'"),
        ("meco=-1", "positive"),
        ("meco,meco", "twice"),
        (" ", "at least one"),
    ],
)
def test_proxy_specs_are_checked(nb201, proxies, match):
    with pytest.raises(InvalidInputError, match=match):
        make_evaluator("proxy", nb201, proxies=proxies)


def test_predictor_gives_100_minus_the_prediction(files, nb201, mbv2):
    from slimforge.estimators import AccuracyPredictor

    predictor = AccuracyPredictor.load(files / "acc_predictor.json")
    ev = make_evaluator("predictor", nb201, path=files / "acc_predictor.json")
    values = ev.evaluate(GENOME)
    assert values["predicted_error"] == pytest.approx(100.0 - predictor.predict([GENOME])[0])
    assert values["predicted_accuracy"] == pytest.approx(100.0 - values["predicted_error"])
    with pytest.raises(InvalidInputError, match="fitted on"):
        make_evaluator("predictor", mbv2, path=files / "acc_predictor.json")


def test_measured_latency_measures_once_per_network_with_a_cache(nb201, tmp_path):
    options = {"time_cap_s": QUICK_S, "store_path": tmp_path / "run"}
    ev = make_evaluator("measured_latency", nb201, **options)
    genomes = [GENOME, (1, 1, 1, 1, 1, 1)]
    first = ev.evaluate_many(genomes)
    for v in first:
        assert v["latency_ms"] > 0 and v["latency_iqr_ms"] >= 0 and v["energy_mj"] > 0
    assert ev.describe()["input_shape"] == "1x3x32x32" and "store_path" not in ev.describe()
    ev.close()
    assert (tmp_path / "run" / "store.sqlite").is_file()
    # A new evaluator with the same cache gets the very same figures: nothing was measured again.
    assert make_evaluator("measured_latency", nb201, **options).evaluate_many(genomes) == first


@pytest.mark.parametrize(
    "options, match",
    [
        ({"device": "table:x.csv"}, "not a measured device"),
        ({"device": "local-cpu", "token": "t"}, "are for a remote:URL device"),
        ({"device": "remote:ftp://x"}, "HOST:PORT"),
        ({"time_cap_s": 0}, "time_cap_s"),
    ],
)
def test_measured_latency_refuses_bad_options(nb201, options, match):
    with pytest.raises(InvalidInputError, match=match):
        make_evaluator("measured_latency", nb201, **options)


def test_lut_latency_sums_the_table(files, mbv2):
    ev = make_evaluator("lut_latency", mbv2, path=files / "lut.csv")
    genome = tuple(n - 1 for n in mbv2.num_choices)
    layers = sum(0.1 * (i + 1) + 0.01 * c for i, c in enumerate(genome))
    parts = 2 + len(genome)
    assert ev.evaluate(genome)["latency_ms"] == pytest.approx(0.4 + 0.3 + layers - (parts - 1) * 0.005)


def test_lut_latency_refuses_a_table_of_another_space(files, mbv2, nb201):
    wider = get_space("mbv2", **{**TINY_MBV2, "width": 0.5})
    with pytest.raises(InvalidInputError, match="was built for MBV2Space"):
        make_evaluator("lut_latency", wider, path=files / "lut.csv")
    with pytest.raises(InvalidInputError, match="for the mbv2 space, not nb201"):
        make_evaluator("lut_latency", nb201, path=files / "lut.csv")


def test_latency_predictor_is_for_nb201_only(files, nb201, mbv2):
    with pytest.raises(InvalidInputError, match="NAS-Bench-201"):
        make_evaluator("latency_predictor", mbv2, path=files / "lat_predictor.json")
    with pytest.raises(InvalidInputError, match="channels=4, cells_per_stage=1"):
        make_evaluator("latency_predictor", get_space("nb201"), path=files / "lat_predictor.json")


def test_cost_metrics_use_the_spaces_input_shape(nb201, mbv2):
    from slimforge.hardware import count_macs

    net = nb201.build(GENOME, 10)
    assert make_evaluator("macs", nb201).evaluate(GENOME)["macs"] == count_macs(net, (1, 3, 32, 32))
    bigger = make_evaluator("macs", nb201, input_shape="1x3x64x64").evaluate(GENOME)["macs"]
    assert bigger == count_macs(net, (1, 3, 64, 64))
    params = sum(p.numel() for p in net.parameters())
    assert make_evaluator("model_size", nb201, weight_bits=4).evaluate(GENOME) == {
        "model_bytes": float(math.ceil(params / 2))
    }
    assert make_evaluator("peak_memory", mbv2).describe()["input_shape"] == "1x3x32x32"
    for name in ("macs", "peak_memory", "model_size"):  # one vocabulary for the three
        assert make_evaluator(name, nb201, input_shape="1x3x16x16", num_classes=5).evaluate(GENOME)
    with pytest.raises(InvalidInputError, match="weight_bits"):
        make_evaluator("model_size", nb201, weight_bits=0)


# ------------------------------------------------------------------------------- build_problem
def test_build_problem_takes_every_accuracy_source(files, nb201):
    supernet = build_problem(nb201, "error,macs", accuracy=f"supernet:{files / 'supernet'}")
    e = supernet.evaluate(GENOME)
    assert 0 <= e.objectives["error"] <= 100 and e.objectives["macs"] > 0
    predicted = build_problem(nb201, "error", accuracy=f"predictor:{files / 'acc_predictor.json'}")
    e = predicted.evaluate(GENOME)
    assert e.objectives["error"] == e.metrics["predicted_error"]
    assert predicted.describe()["evaluators"][0]["aliases"] == {
        "error": "predicted_error",
        "accuracy": "predicted_accuracy",
    }
    proxy = build_problem(
        nb201,
        "proxy_score_neg,num_params",
        accuracy="proxy:num_params",
        accuracy_options={"reference": 3, "batch_size": 2},
        data="digits",
    )
    assert math.isfinite(proxy.evaluate(GENOME).objectives["proxy_score_neg"])


def test_build_problem_takes_every_device_form(files, nb201, mbv2):
    measured = build_problem(
        nb201, "latency_ms,energy_mj", device="local-cpu", device_options={"time_cap_s": QUICK_S}
    )
    assert measured.evaluate(GENOME).objectives["latency_ms"] > 0
    lut = build_problem(mbv2, "latency_ms,model_bytes", device=f"lut:{files / 'lut.csv'}")
    assert lut.evaluate((0,) * mbv2.num_genes).objectives["latency_ms"] > 0
    predicted = build_problem(nb201, "latency_ms", device=f"predictor:{files / 'lat_predictor.json'}")
    assert predicted.evaluate(GENOME).objectives["latency_ms"] == pytest.approx(1.0 + sum(GENOME), rel=0.2)
    costs = build_problem(nb201, "macs,peak_mem_bytes", constraints=["model_bytes <= 1e9", "num_params >= 1"])
    assert [type(ev).__name__ for ev in costs.evaluators] == [
        "MacsEvaluator",
        "PeakMemoryEvaluator",
        "ModelSizeEvaluator",
        "NumParamsEvaluator",
    ]
    assert costs.evaluate(GENOME).feasible


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"accuracy": "tabel:x.csv"}, UnknownNameError, "did you mean table.*proxy:NAMES, supernet:DIR"),
        ({"accuracy": "supernet:"}, InvalidInputError, "--accuracy supernet:DIR"),
        ({"accuracy": "proxy:meco"}, InvalidInputError, "gives proxy_score_neg, proxy_score, not error"),
        ({"device": "lut:x.csv", "objectives": "latency_ms,energy_mj"}, InvalidInputError, "not energy_mj"),
        ({"device": "local-cpu:3", "objectives": "latency_ms"}, InvalidInputError, "takes no argument"),
        ({"device": "remote", "objectives": "latency_ms"}, InvalidInputError, "remote:http://HOST:PORT"),
        ({"device": "gpu", "objectives": "latency_ms"}, UnknownNameError, "lut:FILE, predictor:FILE"),
        ({"data": "digits", "accuracy": "table:x.csv"}, InvalidInputError, "--data goes with"),
        ({"objectives": "macs", "data": "digits"}, InvalidInputError, "--data goes with"),
        ({"objectives": "error,flops"}, UnknownNameError, "unknown metric 'flops'"),
        ({"accuracy": "table:x.csv", "accuracy_table": "x.csv"}, InvalidInputError, "not both"),
        ({"objectives": "error"}, InvalidInputError, "supernet:DIR"),
        ({"objectives": "latency_ms"}, InvalidInputError, "local-cpu"),
    ],
)
def test_build_problem_errors_list_the_known_forms(nb201, kwargs, error, match):
    kwargs = {"objectives": "error,latency_ms", **kwargs}
    with pytest.raises(error, match=match) as info:
        build_problem(nb201, **kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_minimize_with_a_measured_objective(nb201, tmp_path):
    from slimforge.io import RunStore

    problem = build_problem(
        nb201,
        "latency_ms,num_params",
        device="local-cpu",
        device_options={"time_cap_s": QUICK_S},
        measurement_cache=tmp_path / "run",
    )
    with RunStore(tmp_path / "run" / "store.sqlite") as store:
        result = minimize(problem, "random", budget=5, seed=0, store=store)
        assert len(store) == 5
    assert result.num_evaluations == 5 and result.front
    assert all(e.objectives["latency_ms"] > 0 and e.metrics["energy_mj"] > 0 for e in result.evaluations)
    batch = problem.evaluate_many([e.genome for e in result.evaluations[:2]])
    # The second pass reads the measurement cache: the very figures of the search.
    assert [b.objectives for b in batch] == [e.objectives for e in result.evaluations[:2]]


@pytest.mark.slow
def test_cli_search_with_an_accuracy_spec_and_macs(files, capsys):
    code = main(
        [
            "search", "--space", "nb201", "--objectives", "error,macs",
            "--accuracy", f"table:{files / 'acc.csv'}", "--budget", "20", "--no-progress", "--json",
        ]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["num_evaluations"] == 20 and out["objectives"] == ["error", "macs"]
    assert all(f["objectives"]["macs"] > 0 for f in out["front"])


def test_cli_search_bad_accuracy_spec_is_one_line(capsys):
    code = main(["search", "--objectives", "error,macs", "--accuracy", "csv:acc.csv", "--budget", "5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "predictor:FILE, proxy:NAMES, supernet:DIR, table:FILE" in err
