#!/bin/bash
# Issue 23: the third seed (2) of MobileNetV2-CIFAR 0.5 at 30 % MACs and 85 % measured latency, the same commands
# as seeds 0 and 1 (runs/bench23/cmp/mbv2c-*-s{0,1}). The latency run fills with the confirming fill (two timings).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
B=runs/bench23
for b in macs=0.3 latency=0.85; do
  out=$B/cmp/mbv2c-${b//=/}-s2
  [ -s $out.json ] && continue
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) start $b seed 2"
  .venv/bin/slimforge compress $B/mbv2c --data npz:../shared/data/cifar10_subset.npz --auto prune --budget $b \
    --search-budget 40 --finetune-epochs 3 --seed 2 --threads 1 --time-cap 10 --out $out --overwrite --json \
    > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  rc=$?  # before the echo's $(date) resets it
  echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) end $b seed 2 rc $rc"
done
