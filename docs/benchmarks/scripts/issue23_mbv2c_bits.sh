#!/bin/bash
# Issue 23: MobileNetV2-CIFAR 0.5, mixed precision vs uniform 4-bit at equal bytes (the ResNet-20 rows' command),
# seeds 0-2. Outputs runs/bench23/cmp/mbv2c-bits4-sS; a finished run (its JSON) is skipped.
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
B=runs/bench23
for s in 0 1 2; do
  out=$B/cmp/mbv2c-bits4-s$s
  [ -s $out.json ] && continue
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) start bits=4 seed $s"
  .venv/bin/slimforge compress $B/mbv2c --data npz:../shared/data/cifar10_subset.npz --auto bits --budget bits=4 \
    --baseline-bits 4 --search-budget 40 --finetune-epochs 3 --seed $s --threads 1 --out $out --overwrite --json \
    > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  rc=$?  # before the echo's $(date) resets it
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) end bits=4 seed $s rc $rc"
done
