"""Issue 22: speed-ups of TrainRuntime's opt-in settings on this machine, interleaved in one process.

Each round trains every variant for one epoch (one train_classifier call) in turn, so load on the
machine falls on all of them alike; the table gives the median seconds per epoch and its ratio to
fp32 in the same rounds. torch.compile's first call (compilation) is reported apart.
"""

import statistics
import sys
import time

import numpy as np
import torch

from slimforge.data import ArrayDataset, Normalization
from slimforge.training import TrainRuntime, TrainSettings, train_classifier
from slimforge.zoo import create_model

MODELS = sys.argv[1].split(",") if len(sys.argv) > 1 else ["resnet20", "mobilenet_v2_cifar"]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
IMAGES, BATCH = 512, 64
VARIANTS = {
    "fp32": TrainRuntime(),
    "bf16": TrainRuntime(precision="bf16"),
    "channels_last": TrainRuntime(channels_last=True),
    "bf16+channels_last": TrainRuntime(precision="bf16", channels_last=True),
    "compile": TrainRuntime(compile=True),
    "compile+bf16": TrainRuntime(compile=True, precision="bf16"),
}

torch.set_num_threads(THREADS)
rng = np.random.default_rng(0)
data = ArrayDataset(rng.integers(0, 256, (IMAGES, 3, 32, 32), dtype=np.uint8),
                    rng.integers(0, 10, IMAGES).astype(np.int64), tuple(str(i) for i in range(10)),
                    Normalization((0.5,) * 3, (0.25,) * 3))
settings = TrainSettings(epochs=1, batch_size=BATCH, lr=0.01, augment=False)
print(f"torch {torch.__version__}, {THREADS} thread(s), {IMAGES} images/epoch, batch {BATCH}, {ROUNDS} rounds")
for name in MODELS:
    models = {}
    first = {}
    for v, rt in VARIANTS.items():
        torch.manual_seed(0)
        models[v] = create_model(name, num_classes=10)
        t = time.perf_counter()
        train_classifier(models[v], data, settings, runtime=rt)  # warm-up (compilation for compile)
        first[v] = time.perf_counter() - t
    times = {v: [] for v in VARIANTS}
    ratios = {v: [] for v in VARIANTS}
    for r in range(ROUNDS):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        got = {}
        for v in order:
            t = time.perf_counter()
            train_classifier(models[v], data, settings, runtime=VARIANTS[v])
            got[v] = time.perf_counter() - t
        for v in VARIANTS:
            times[v].append(got[v])
            ratios[v].append(got["fp32"] / got[v])
    print(f"\n{name}")
    print("| variant | first epoch s | median epoch s | speed-up vs fp32 (median of per-round ratios) | min..max ratio |")
    print("|---|---|---|---|---|")
    for v in VARIANTS:
        print(f"| {v} | {first[v]:.2f} | {statistics.median(times[v]):.2f} | {statistics.median(ratios[v]):.2f}x "
              f"| {min(ratios[v]):.2f}..{max(ratios[v]):.2f} |")
    sys.stdout.flush()
