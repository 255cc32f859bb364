#!/usr/bin/env bash
# Issue 21: bo at 500 evaluations, one seed per command (the same harness; seeds are independent),
# so that each seed's result is kept as it ends.
set -u
cd "$(dirname "$0")/../../.." && mkdir -p runs/bench21
source .venv/bin/activate
export OMP_NUM_THREADS=1
D=../shared/data/nb201
for S in 0 1 2 3 4; do
  for DEV in onnxruntime litert; do
    out=runs/bench21/bo_${DEV}_seed$S.json
    [ -s "$out" ] && continue
    start=$(date +%s)
    slimforge bench tabular --accuracy $D/accuracy_cifar10.csv --device table:$D/device_pi5_$DEV.csv \
      --algorithm bo --budget 500 --checkpoints 100,200 --seed $S --repeats 1 --json > "$out.tmp" 2> "${out%.json}.err" \
      && mv "$out.tmp" "$out"
    echo "bo $DEV seed $S $(( $(date +%s) - start )) s $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
