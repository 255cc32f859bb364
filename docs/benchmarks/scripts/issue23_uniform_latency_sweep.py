"""Measured latency ratio (ONNX Runtime, 1 thread, batch 1, interleaved with the original) of ResNet-20 pruned
uniformly (l1, every group at ratio r) over r: is latency monotonic in the uniform ratio (the bisection of the
uniform baseline assumes it)? Issue 23, session 2."""
import sys, torch
torch.set_num_threads(1)
from slimforge.compress.auto._common import load_splits, load_source, measure_model_latencies
from slimforge.compress.auto._spaces import PrunePolicySpace
from slimforge.compress.prune import prunable_groups
from slimforge.hardware import count_macs
splits = load_splits("npz:../shared/data/cifar10_subset.npz", 0)
base = load_source("runs/bench23/resnet20", splits, None, None).model.eval()
shape = (1, *splits.input_shape)
groups, skipped, ignored = prunable_groups(base, shape)
space = PrunePolicySpace(base, shape, groups, tuple(round(0.1 * i, 1) for i in range(9)), criterion="l1", ignored=ignored, seed=0)
cap = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
ratios = [float(r) for r in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0.2, 0.25, 0.282, 0.3, 0.35, 0.4, 0.4227, 0.45, 0.5]
for rep in range(2):
    for r in ratios:
        m = space.prune(dict.fromkeys(groups, r))
        convs = [mod.out_channels for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
        lat, _ = measure_model_latencies([base, m], shape, time_cap_s=cap)
        print(f"rep {rep} r={r:<6} MACs {count_macs(m, shape)/1e6:6.2f} M  latency ratio {lat[1]/lat[0]:.3f}  "
              f"({lat[0]:.3f} / {lat[1]:.3f} ms) widths {sorted(set(convs))}", flush=True)
