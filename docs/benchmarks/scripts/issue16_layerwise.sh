#!/bin/bash
# Issue 16, layer-wise spaces: supernet ranking against a seeded set of standalone-trained subnets
# (no accuracy table exists for mbv2 / shufflenet). One space per call, every step sequential:
#   docs/benchmarks/scripts/issue16_layerwise.sh mbv2        # width 0.35, depths 2,2,2,2,2,1 (MBV2Space.small)
#   docs/benchmarks/scripts/issue16_layerwise.sh shufflenet  # width 0.5,  depths 2,2,4,2     (ShuffleNetSpace.small)
# Env: SAMPLE (default 10), REF_EPOCHS (5), SN_EPOCHS (10), SUPERNETS ("default spos_aff"). Outputs under runs/bench16/layerwise/ (cached:
# the standalone reference resumes, a finished supernet / rank is not redone).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
name=$1
SAMPLE=${SAMPLE:-10}; REF_EPOCHS=${REF_EPOCHS:-5}; SN_EPOCHS=${SN_EPOCHS:-10}; SUPERNETS=${SUPERNETS:-default spos_aff}
D=npz:../shared/data/cifar10_subset.npz
B=runs/bench16/layerwise
case $name in
  mbv2) SA=(--space-arg width=0.35 --space-arg resolution=32 --space-arg 'stage_depths=[2,2,2,2,2,1]');;
  shufflenet) SA=(--space-arg width=0.5 --space-arg resolution=32 --space-arg 'stage_depths=[2,2,4,2]');;
  *) echo "usage: $0 mbv2|shufflenet" >&2; exit 2;;
esac
A=(--space "$name" "${SA[@]}" --data "$D" --threads 1)
SF=.venv/bin/slimforge
log() { echo "$(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) $*" >> $B/${name}_times.log; }
mkdir -p $B
REF=$B/standalone_${name}_small_n${SAMPLE}_e${REF_EPOCHS}
log "start standalone $REF"
$SF supernet standalone "${A[@]}" --epochs $REF_EPOCHS --sample $SAMPLE --seed 0 --out $REF --json \
    > $REF.json 2> $REF.err || { log "standalone failed"; exit 1; }
log "end standalone"
for sn in $SUPERNETS; do
  out=$B/${name}_small_${sn}_e${SN_EPOCHS}
  # "default" was supernet train's default when these ran: few-shot, affine-free (a layer-wise space's
  # own recipe, SPOS-affine, is the default since; name it so the rows reproduce)
  extra=(--method fewshot --no-bn-affine); [ $sn = spos_aff ] && extra=(--method spos --bn-affine)
  if [ ! -s $out.json ]; then
    log "start train $out"
    $SF supernet train "${A[@]}" --epochs $SN_EPOCHS "${extra[@]}" --out $out --json > $out.json 2> $out.err \
        || { log "train $sn failed"; rm -f $out.json; continue; }
    log "end train $out"
  fi
  for ft in 0 8; do
    r=$B/rank_${name}_small_${sn}_e${SN_EPOCHS}_ft$ft
    [ -s $r.json ] && continue
    log "start rank $r"
    $SF supernet rank --checkpoint $out --reference $REF --finetune-steps $ft --threads 1 --json > $r.json 2> $r.err \
        || { log "rank failed"; rm -f $r.json; }
    log "end rank $r"
  done
done
log "done"
