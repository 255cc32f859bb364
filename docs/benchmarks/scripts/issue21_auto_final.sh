#!/bin/bash
# Issue 21, `auto` acceptance run: seeds 0-4, both Raspberry Pi 5 tables, the shipped default, run once
# after the tuning (seeds 50-99) was closed. Writes runs/bench21/auto_DEV.json (+ .err with date and load).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
for dev in onnxruntime litert; do
  { date -u; uptime; git rev-parse HEAD; } > runs/bench21/auto_$dev.err
  nice -n 19 .venv/bin/slimforge bench tabular --accuracy ../shared/data/nb201/accuracy_cifar10.csv \
    --device ../shared/data/nb201/device_pi5_$dev.csv --algorithm auto \
    --budget 500 --checkpoints 100,200 --seed 0 --repeats 5 --json > runs/bench21/auto_$dev.json 2>> runs/bench21/auto_$dev.err
  { date -u; uptime; } >> runs/bench21/auto_$dev.err
done
