#!/bin/bash
# usage: docs/benchmarks/scripts/issue16_run1.sh NAME MODES [supernet train options...] (issue 16 variant table)
set -e
cd "$(dirname "$0")/../../.." && mkdir -p runs/bench16
export OMP_NUM_THREADS=1
name=$1; modes=$2; shift 2
.venv/bin/slimforge supernet train --space nb201 --space-arg channels=16 --space-arg cells_per_stage=2 --data npz:../shared/data/cifar10_subset.npz --threads 1 --out runs/bench16/$name --json "$@" > runs/bench16/$name.log 2>&1
.venv/bin/python docs/benchmarks/scripts/issue16_diag.py runs/bench16/$name 0 $modes > runs/bench16/${name}_diag.log 2>&1
