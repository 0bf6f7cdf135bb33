#!/usr/bin/env bash
# The README's loss comparison: same seed, steps, data and model; only --loss differs
# (300 steps of ndr-edge-xs, one thread each; about 13 min per loss on this 2-core CPU).
# Results: the "step 300:" line of runs/cmp/LOSS.log. The relative loss's floor is
# ndr_edge.train.loop.RELATIVE_FLOOR (0.02; the first comparison ran it at 1e-3).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/cmp
for loss in ${LOSSES:-l1 psnr relative}; do
  OMP_NUM_THREADS=1 .venv/bin/ndr-train --loss "$loss" --procedural 0.3 --steps 300 --lr 4e-4 --threads 1 \
    --val-every 150 --save-every 0 --quiet -o "runs/cmp/$loss.safetensors" > "runs/cmp/$loss.log" 2>&1
  grep "^step 300:" "runs/cmp/$loss.log" | sed "s/^/$loss: /"
done
