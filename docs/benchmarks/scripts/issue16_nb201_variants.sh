#!/bin/bash
# Issue 16, NB-201: the variants the issue names that earlier stops did not run at CPU scale -- sandwich training
# with in-place distillation (BigNAS), path dropout and a smaller weight decay -- each against the few-shot default
# (few3_w80_noaff: few-shot on gene 3, warm-up 0.8, affine-free choice BN, 15 epochs), scored the same way: the
# 12-architecture standalone reference (runs/bench16/standalone/nb201_e5) against the table truth, BN re-calibration,
# fine-tune 8 steps (the shipped scorer; the default row: +0.515).
#   docs/benchmarks/scripts/issue16_nb201_variants.sh sandwich|droppath|wd
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
A=(--space nb201 --space-arg channels=16 --space-arg cells_per_stage=2 --data npz:../shared/data/cifar10_subset.npz
   --threads 1 --epochs 15 --no-bn-affine)
case $1 in
  sandwich) X=(--method sandwich);;
  droppath) X=(--method fewshot --set warmup=0.8 --set gene=3 --set split=0.5 --set drop_path=0.1);;
  wd) X=(--method fewshot --set warmup=0.8 --set gene=3 --set split=0.5 --weight-decay 0.00005);;
  *) echo "usage: $0 sandwich|droppath|wd" >&2; exit 2;;
esac
B=runs/bench16/variants
mkdir -p $B
out=$B/$1_e15
log() { echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >> $B/times.log; }
if [ ! -s $out.json ]; then
  log "start train $out"
  .venv/bin/slimforge supernet train "${A[@]}" "${X[@]}" --out $out --json > $out.json 2> $out.err || { log "train failed"; rm -f $out.json; exit 1; }
  log "end train $out"
fi
r=$B/rank_$1_e15_vs_standalone
log "start rank $r"
.venv/bin/slimforge supernet rank --checkpoint $out --reference runs/bench16/standalone/nb201_e5 --finetune-steps 8 \
    --table ../shared/data/nb201/accuracy_cifar10.csv --threads 1 --json > $r.json 2> $r.err || { log "rank failed"; rm -f $r.json; }
log "end rank $r"
