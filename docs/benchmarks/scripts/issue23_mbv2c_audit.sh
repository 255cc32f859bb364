#!/bin/bash
# Issue 23, session 5: the estimate audit on MobileNetV2-CIFAR 0.5 (20 seeded policies at 50 % MACs, each scored
# by every estimate and finetuned 3 epochs), from a frozen archive of the code: SRC=runs/bench23/src_<commit>
# made by `git archive <commit> src | tar -x -C runs/bench23/src_<commit>`. Resumes from its progress file.
# Then: python docs/benchmarks/scripts/issue23_analyse_audit.py runs/bench23/audit-mbv2c/audit_progress.jsonl
cd "$(dirname "$0")/../../.."
SRC=${SRC:?set SRC to the archive, e.g. runs/bench23/src_27e6622}
export PYTHONPATH=$SRC/src OMP_NUM_THREADS=1
echo "start $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg) code $(.venv/bin/python -c 'import slimforge; print(slimforge.__file__)')"
nice -n 10 .venv/bin/python -m slimforge compress runs/bench23/mbv2c --data npz:../shared/data/cifar10_subset.npz \
    --auto prune --budget macs=0.5 --audit-estimates 20 --finetune-epochs 3 --seed 100 --threads 1 \
    --out runs/bench23/audit-mbv2c
rc=$?
echo "end rc=$rc $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg)"
