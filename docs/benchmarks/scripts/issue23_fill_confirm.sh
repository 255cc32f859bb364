#!/bin/bash
# Issue 23: ResNet-20 under a latency budget, after budget filling started confirming each fitting step with a
# second timing (commit "Budget filling under a latency budget keeps a step only when two timings of it fit").
# Same commands as the "-fix" rows (seeds 0-2, 85 % and 70 %); outputs runs/bench23/cmp/resnet20-latencyB-fill2-sS.
# One process at a time; a finished run (its JSON) is skipped.
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
B=runs/bench23
for b in latency=0.85 latency=0.7; do
  for s in 0 1 2; do
    out=$B/cmp/resnet20-${b//=/}-fill2-s$s
    [ -s $out.json ] && continue
    echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) start $b seed $s"
    .venv/bin/slimforge compress $B/resnet20 --data npz:../shared/data/cifar10_subset.npz --auto prune --budget $b \
      --search-budget 40 --finetune-epochs 3 --seed $s --threads 1 --time-cap 10 --out $out --overwrite --json \
      > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  rc=$?  # before the echo's $(date) resets it
    echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) end $b seed $s rc $rc"
  done
done
