#!/usr/bin/env bash
# Train the bundled model's recipe on a CUDA GPU (the `device` machine, or any GPU box) in a
# few minutes, writing the checkpoint to ${OUT:-runs}/xs-gpu.safetensors.
#
# The device machine cannot install packages, so this uses the Python it finds there: it
# needs torch with CUDA, safetensors, scikit-image, scipy, pillow, tqdm and click. It does
# not need `pip install -e .`: training imports only ndr_edge/ (PYTHONPATH=.).
#   usage: bash scripts/train_gpu.sh [extra ndr-train options]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUTDIR=${OUT:-runs}
mkdir -p "$OUTDIR"
"$PY" - <<'PYEOF' || { echo "train_gpu: this machine's $PY lacks torch with CUDA or a training dependency (see above)" >&2; exit 3; }
import importlib, sys
missing = [m for m in ("torch", "safetensors", "skimage", "scipy", "PIL", "tqdm", "click") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA GPU")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
PYEOF
# the bundled chain's data and loss (psnr loss, dead leaves, grey and tone-shifted crops, structured
# scenes: README "The bundled checkpoint"), with bigger batches and crops than the CPU runs: the GPU
# has the memory; bf16 autocast is automatic on CUDA
PYTHONPATH=. "$PY" -m ndr_edge.cli.train --device cuda --loss psnr --procedural 0.3 --grey 0.25 --tone 0.3 \
  --structured 0.35 \
  --steps "${STEPS:-6000}" --batch 16 --crop 96 --lr 4e-4 --val-every 500 --save-every 500 --workers 8 \
  -o "$OUTDIR/xs-gpu.safetensors" "$@"
