#!/bin/bash
# Issue 23: a worker of the searched-vs-uniform queue (a job is claimed by mkdir of its .lock, a finished job has
# its JSON). Default search: bn estimate, budget filling on, no re-rank; 3-epoch identical finetunes.
# The code is a frozen `git archive` given as SRC (the first session's runs pointed PYTHONPATH at a directory that
# did not exist and so ran the live working tree); the worker checks that slimforge is imported from SRC.
# usage: SRC=runs/bench23/src_<sha>/src [TAG=name] worker_cmp.sh WAIT_PID JOB...   (JOB = net:budget:seed[:extra args];
#        TAG, when set, is added to the output names: a rerun beside an earlier run of the same job;
#        START_BEFORE=HH:MM (UTC), when set: no job is started after that time)
#        budget "bits4" runs --auto bits at the bytes of uniform 4-bit instead of --auto prune.
cd /work/main
: "${SRC:?set SRC to an archived src directory}"
export OMP_NUM_THREADS=1 PYTHONPATH=$(realpath "$SRC")
B=runs/bench23
DATA=npz:../shared/data/cifar10_subset.npz
PY=.venv/bin/python
where=$($PY -c "import slimforge; print(slimforge.__file__)")
case $where in "$PYTHONPATH"/*) ;; *) echo "slimforge imported from $where, not $PYTHONPATH" >&2; exit 1;; esac
SF() { $PY -c "import slimforge.cli as c, sys; sys.exit(c.main(sys.argv[1:]))" "$@"; }
wait_pid=$1; shift
while kill -0 $wait_pid 2>/dev/null; do sleep 20; done
for job in "$@"; do
  IFS=: read net budget seed extra <<< "$job"
  out=$B/cmp/$net-${budget//=/}${TAG:+-$TAG}-s$seed
  [ -f $out.json ] && continue
  if [ -n "$START_BEFORE" ] && [[ $(date -u +%H:%M) > $START_BEFORE ]]; then
    echo "$(date -u +%T) not started (after $START_BEFORE): $job"; continue
  fi
  mkdir $out.lock 2>/dev/null || continue
  echo "$(date -u +%T) start $job (pid $$) code $PYTHONPATH; uptime:$(uptime | sed 's/.*load/ load/')"
  if [ "$budget" = bits4 ]; then
    SF compress $B/$net --data $DATA --auto bits --budget bits=4 --baseline-bits 4 --search-budget 40 \
      --finetune-epochs 3 --seed $seed --threads 1 $extra --out $out --overwrite --json \
      > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  else
    SF compress $B/$net --data $DATA --auto prune --budget $budget --search-budget 40 --finetune-epochs 3 \
      --seed $seed --threads 1 --time-cap 10 $extra --out $out --overwrite --json \
      > $out.json.tmp 2> $out.log && mv $out.json.tmp $out.json
  fi
  rc=$?  # before any command substitution, which resets $?
  echo "$(date -u +%T) end $job rc $rc; uptime:$(uptime | sed 's/.*load/ load/')"
done
echo "$(date -u +%T) worker $$ done"
