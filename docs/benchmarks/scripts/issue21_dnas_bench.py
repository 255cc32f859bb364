"""Issue 21 item 4 benchmark: FBNet / ProxylessNAS with a latency limit on mbv2 (small) and the CIFAR subset.

For each limit: train the supernet with the hardware-aware method, take the derived architecture,
fine-tune it from its inherited weights with identical settings, test accuracy; then measure every
derived network on local-cpu in one interleaved call and compare with the limit and the LUT.

Usage: .venv/bin/python docs/benchmarks/scripts/issue21_dnas_bench.py --lut FILE --out DIR [--method fbnet] ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from slimforge.data import load_dataset, make_loader
from slimforge.hardware import LatencyProtocol, get_device, read_lut
from slimforge.spaces import get_space
from slimforge.supernet import TrainConfig, load_arch_costs, load_supernet, recalibrate_bn, train_supernet
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
    p.add_argument("--retrain-epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
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
    splits = load_dataset(args.data, val_fraction=0.1, seed=args.seed)
    rows = []
    for limit in limits:
        run = out / f"{args.method}-{args.mode}-{args.constraint}-{limit:.3f}"
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
            },
            batch_size=64,
            arch_lr=args.arch_lr,
            bn_affine=True,
            seed=args.seed,
        )
        t0 = time.time()
        result = train_supernet(config, run, resume=run.exists(), splits=splits)
        train_s = time.time() - t0
        genome = space.from_string(result.derived_arch)
        supernet, _, _ = load_supernet(run)
        net = supernet.extract(genome).to(memory_format=torch.contiguous_format)
        # Shared (elastic) BN statistics mix every choice's: re-estimate them on 256 training images
        # before scoring the inherited weights, as `supernet rank` does.
        batches = make_loader(splits.train, 64, train=False).epoch(0)
        recalibrate_bn(net, [images for _, (images, _) in zip(range(4), batches)])
        before = accuracy(net, splits.test)
        settings = TrainSettings(epochs=args.retrain_epochs, batch_size=64, lr=0.05, seed=args.seed)
        t0 = time.time()
        train_classifier(net, splits.train, settings)
        rows.append(
            {
                "limit_ms": limit,
                "arch": result.derived_arch,
                "lut_ms": lut.predict(genome),
                "supernet_train_s": round(train_s, 1),
                "inherited_acc": before,
                "finetuned_acc": accuracy(net, splits.test),
                "finetune_s": round(time.time() - t0, 1),
                "final_loss": result.final_loss,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    models = [space.build(space.from_string(r["arch"]), num_classes=10) for r in rows]
    measured = get_device("local-cpu").measure_many(
        models, "1x3x32x32", threads=1, protocol=LatencyProtocol(), seed=args.seed, energy=False
    )
    for r, m in zip(rows, measured):
        r["measured_ms"] = m.latency_ms
        r["measured_iqr_ms"] = m.latency_ms_iqr
        r["stable"] = m.stable
        r["within_limit"] = m.latency_ms <= r["limit_ms"]
    summary = {
        "method": args.method,
        "mode": args.mode,
        "cheapest_lut_ms": cheapest,
        "dearest_lut_ms": dearest,
        "args": vars(args),
        "device_info": json.loads(measured[0].device_info.to_json(indent=None)),
        "rows": rows,
    }
    (out / f"summary-{args.method}-{args.mode}-{args.constraint}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["rows"], indent=1))


if __name__ == "__main__":
    main()
