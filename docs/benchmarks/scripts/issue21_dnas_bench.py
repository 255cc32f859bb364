"""Issue 21 item 4 benchmark: FBNet / ProxylessNAS with a latency limit on mbv2 (small) and the CIFAR subset.

For each seed and limit: train the supernet with the hardware-aware method, take the derived
architecture (``--derive``: the trainer's option), retrain it as ``slimforge demo`` does (``--retrain
demo``: fine-tune from the supernet's weights for the demo's epochs at ``retrain.lr``, distilled from
the supernet's largest sub-network with BN re-estimated on ``accuracy.bn_images`` training images), test
accuracy; then measure every derived network and the LUT's cheapest on local-cpu in one interleaved
call and compare with the limit and the LUT.

Usage: .venv/bin/python docs/benchmarks/scripts/issue21_dnas_bench.py --lut FILE --out DIR [--method fbnet]
    [--seeds 0,1,2,3,4] [--derive auto] [--retrain demo|short] ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from slimforge.cli._demo import DEMO_CONFIG
from slimforge.compress import DistillHook
from slimforge.data import load_dataset, make_loader, sample_batch
from slimforge.hardware import LatencyProtocol, get_device, read_lut
from slimforge.runs import RunConfig
from slimforge.spaces import get_space
from slimforge.supernet import TrainConfig, load_arch_costs, load_supernet, recalibrate_bn, train_supernet
from slimforge.supernet.sandwich import size_extremes
from slimforge.training import TrainSettings, accuracy, train_classifier

SPACE = {"width": 0.35, "resolution": 32, "stage_depths": [2, 2, 2, 2, 2, 1]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lut", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data", default="npz:../shared/data/cifar10_subset.npz")
    p.add_argument("--method", default="fbnet")
    p.add_argument("--mode", default="hard")
    p.add_argument("--constraint", default="project", help="hard mode: project or dual")
    p.add_argument("--fractions", default="0.15,0.35,0.6", help="limits between the cheapest and dearest network")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--arch-lr", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.25)
    p.add_argument("--retrain", default="demo",
                   help="demo: the demo's retraining; short: 3 epochs lr 0.05, no teacher; none: no retraining")
    p.add_argument("--retrain-epochs", type=int, default=3, help="--retrain short only")
    p.add_argument("--seeds", default="0")
    p.add_argument("--with-cheapest", action="store_true",
                   help="also retrain the LUT's cheapest network from the tightest limit's supernet the same way")
    p.add_argument("--derive", default="auto", help="the trainer's derive option: auto, probable or scored")
    p.add_argument("--sharing", default="elastic", help="mbv2 supernet weights: elastic (default) or separate")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space("mbv2", **SPACE)
    costs = load_arch_costs(f"lut:{args.lut}", space)
    lut = read_lut(args.lut)
    cheapest = costs.cheapest()[1]
    dearest = costs.of(tuple(max(range(len(r)), key=r.__getitem__) for r in costs.table))
    limits = [round(cheapest + float(f) * (dearest - cheapest), 3) for f in args.fractions.split(",")]
    demo = RunConfig.from_dict(DEMO_CONFIG)
    rows = []
    for seed in [int(v) for v in args.seeds.split(",")]:
        splits = load_dataset(args.data, val_fraction=0.1, seed=seed)
        for limit in limits:
            rows.append(_one(args, space, lut, splits, demo, seed, limit, out, args.with_cheapest and limit == limits[0]))
            print(json.dumps(rows[-1]), flush=True)
    cheapest_arch = costs.cheapest()[0]
    models = [space.build(space.from_string(r["arch"]), num_classes=10) for r in rows]
    models.append(space.build(space.validate(cheapest_arch), num_classes=10))
    measured = get_device("local-cpu").measure_many(
        models, "1x3x32x32", threads=1, protocol=LatencyProtocol(), seed=0, energy=False
    )
    cheapest_measured = measured.pop()
    for r, m in zip(rows, measured):
        r["measured_ms"] = m.latency_ms
        r["measured_iqr_ms"] = m.latency_ms_iqr
        r["stable"] = m.stable
        r["within_limit"] = m.latency_ms <= r["limit_ms"]
    summary = {
        "method": args.method,
        "mode": args.mode,
        "cheapest_lut_ms": cheapest,
        "cheapest_arch": space.to_string(space.validate(cheapest_arch)),
        "cheapest_measured_ms": cheapest_measured.latency_ms,
        "dearest_lut_ms": dearest,
        "args": vars(args),
        "device_info": json.loads(measured[0].device_info.to_json(indent=None)),
        "rows": rows,
    }
    (out / f"summary-{args.method}-{args.mode}-{args.constraint}-{args.derive}-{args.retrain}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["rows"], indent=1))


def _one(args, space, lut, splits, demo: RunConfig, seed: int, limit: float, out: Path, cheapest_too: bool) -> dict:
    run = out / f"{args.method}-{args.mode}-{args.constraint}-{args.derive}-s{seed}-{limit:.3f}"
    config = TrainConfig(
        data=args.data,
        epochs=args.epochs,
        space="mbv2",
        space_kwargs={**SPACE, "sharing": args.sharing},
        method=args.method,
        method_options={
            "latency": f"lut:{args.lut}",
            "limit_ms": limit,
            "mode": args.mode,
            "constraint": args.constraint,
            "warmup": args.warmup,
            "derive": args.derive,
        },
        batch_size=64,
        arch_lr=args.arch_lr,
        bn_affine=True,
        seed=seed,
    )
    t0 = time.time()
    result = train_supernet(config, run, resume=run.exists(), splits=splits)
    train_s = time.time() - t0
    genome = space.from_string(result.derived_arch)
    supernet, _, _ = load_supernet(run)
    net = supernet.extract(genome).to(memory_format=torch.contiguous_format)
    # Shared (elastic) BN statistics mix every choice's: re-estimate them on 256 training images
    # before scoring the inherited weights, as `supernet rank` does (a copy: the retraining starts
    # from the supernet's weights as the demo's does).
    probe = supernet.extract(genome)
    batches = make_loader(splits.train, 64, train=False).epoch(0)
    recalibrate_bn(probe, [images for _, (images, _) in zip(range(4), batches)])
    before = accuracy(probe, splits.test)
    t0 = time.time()
    if args.retrain != "none":
        _retrain(net, supernet, space, splits, demo, args, seed)
    retrain_s = time.time() - t0
    extra = {}
    if cheapest_too and args.retrain != "none":  # the network derive=probable gives under a binding limit, retrained alike
        cheapest = supernet.extract(space.validate(load_arch_costs(f"lut:{args.lut}", space).cheapest()[0]))
        _retrain(cheapest, supernet, space, splits, demo, args, seed)
        extra["cheapest_retrained_acc"] = accuracy(cheapest, splits.test)
    return {
        "seed": seed,
        "limit_ms": limit,
        "arch": result.derived_arch,
        "lut_ms": lut.predict(genome),
        "supernet_train_s": round(train_s, 1),
        "inherited_acc": before,
        "retrained_acc": None if args.retrain == "none" else accuracy(net, splits.test),
        "retrain": args.retrain,
        "retrain_s": round(retrain_s, 1),
        "final_loss": result.final_loss,
        **extra,
    }


def _retrain(net, supernet, space, splits, demo: RunConfig, args, seed: int) -> None:
    """Retrain ``net`` (extracted from ``supernet``) in place: as the demo does, or the short recipe."""
    if args.retrain == "demo":
        settings = TrainSettings(
            epochs=demo.retrain.epochs, batch_size=demo.retrain.batch_size, lr=demo.retrain.lr, seed=seed
        )
        teacher = supernet.extract(size_extremes(space)[0]).eval()
        bn_images = min(demo.accuracy.bn_images or 256, len(splits.train))
        recalibrate_bn(teacher, sample_batch(splits.train, bn_images, seed=seed)[0])
        hooks = [DistillHook(teacher, input_shape=(1, 3, 32, 32))] if demo.retrain.distill else []
        train_classifier(net.train(), splits.train, settings, hooks=hooks)
    else:
        settings = TrainSettings(epochs=args.retrain_epochs, batch_size=64, lr=0.05, seed=seed)
        loader = make_loader(splits.train, 64, train=False).epoch(0)
        recalibrate_bn(net, [images for _, (images, _) in zip(range(4), loader)])
        train_classifier(net, splits.train, settings)


if __name__ == "__main__":
    main()
