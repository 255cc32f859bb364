#!/bin/bash
# Issue 16, elastic weight sharing (the layer-wise spaces' default since this change): the elastic supernet of
# NAME trained 10 epochs (SPOS + affine BN, and the shipped default few-shot) on the CIFAR-10 subset, ranked
# against the seed-0 standalone reference and against the same 10 networks trained with seed 1 (its noise).
#   docs/benchmarks/scripts/issue16_elastic.sh shufflenet|mbv2
# Needs runs/bench16/layerwise/standalone_NAME_small_n10_e5{,_ts1} (issue16_layerwise.sh and the README's
# --train-seed 1 command). Outputs under runs/bench16/elastic/ (a finished step is not redone).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
name=$1
case $name in
  mbv2) SA=(--space-arg width=0.35 --space-arg resolution=32 --space-arg 'stage_depths=[2,2,2,2,2,1]');;
  shufflenet) SA=(--space-arg width=0.5 --space-arg resolution=32 --space-arg 'stage_depths=[2,2,4,2]');;
  *) echo "usage: $0 mbv2|shufflenet" >&2; exit 2;;
esac
A=(--space "$name" "${SA[@]}" --data npz:../shared/data/cifar10_subset.npz --threads 1)
SF=.venv/bin/slimforge
REF=runs/bench16/layerwise/standalone_${name}_small_n10_e5
B=runs/bench16/elastic
mkdir -p $B
log() { echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >> $B/${name}_times.log; }
for sn in spos_aff default; do
  out=$B/${name}_${sn}_e10
  extra=(--method fewshot --no-bn-affine); [ $sn = spos_aff ] && extra=(--method spos --bn-affine)
  if [ ! -s $out.json ]; then
    log "start train $out"
    $SF supernet train "${A[@]}" --epochs 10 "${extra[@]}" --out $out --json > $out.json 2> $out.err \
        || { log "train failed"; rm -f $out.json; continue; }
    log "end train $out"
  fi
  for ref in "" _ts1; do
    [ -d $REF$ref ] || continue
    r=$B/rank_${name}_${sn}_e10_ref${ref:-_ts0}
    [ -s $r.json ] && continue
    log "start rank $r"
    $SF supernet rank --checkpoint $out --reference $REF$ref --finetune-steps 0 --threads 1 --json > $r.json 2> $r.err \
        || { log "rank failed"; rm -f $r.json; }
    log "end rank $r"
  done
done
log done
