#!/bin/bash
# Issue 23, session 2: a worker of the searched-vs-uniform queue (several run in parallel; a job is claimed by
# mkdir of its .lock, a finished job has its JSON). Default search: bn estimate, budget filling on, no re-rank;
# 3-epoch identical finetunes. NOTE (added 19:38): src_2111fde never existed (the archive is src_2ab760f), so each run used the live working tree /work/main/src as of its start; see runs/notes/issue23.md.
# usage: worker_cmp.sh WAIT_PID JOB... (JOB = net:budget:seed)
cd /work/main
export OMP_NUM_THREADS=1 PYTHONPATH=/work/main/runs/bench23/src_2111fde/src
B=runs/bench23
DATA=npz:../shared/data/cifar10_subset.npz
SF() { .venv/bin/python -c "import slimforge.cli as c, sys; sys.exit(c.main(sys.argv[1:]))" "$@"; }
wait_pid=$1; shift
while kill -0 $wait_pid 2>/dev/null; do sleep 20; done
for job in "$@"; do
  IFS=: read net budget seed extra <<< "$job"
  out=$B/cmp/$net-${budget//=/}-s$seed
  [ -f $out.json ] && continue
  mkdir $out.lock 2>/dev/null || continue
  echo "$(date -u +%T) start $job (pid $$)"
  SF compress $B/$net --data $DATA --auto prune --budget $budget --search-budget 40 --finetune-epochs 3 \
    --seed $seed --threads 1 --time-cap 10 $extra --out $out --overwrite --json \
    > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  echo "$(date -u +%T) end $job rc $?"
done
echo "$(date -u +%T) worker $$ done"
