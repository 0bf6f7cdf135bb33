#!/usr/bin/env bash
# Create .venv and install ndr-edge with everything needed on a CPU machine for training,
# export, calibration, reports and tests. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.ndr-edge-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build)
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  # TensorRT's type stubs (10.13 API) for mypy; --no-deps: their dependency is TensorRT
  # itself, whose wheels cannot be installed without a GPU host
  .venv/bin/python -m pip install --quiet --no-deps "tensorrt-stubs==10.13.*"
  # NVIDIA TensorRT Model Optimizer for FP16 autocast and TensorRT-aware Q/DQ placement;
  # --no-deps: its [onnx] extra would add onnxruntime-gpu and cupy beside onnxruntime
  .venv/bin/python -m pip install --quiet --no-deps "nvidia-modelopt==0.47.0"
  touch "$stamp"
fi
.venv/bin/python -c "import ndr_edge.model, ndr_edge.runtime, ndr_edge.export, ndr_edge.calibration" \
  || { echo "setup: ndr-edge did not import after install" >&2; exit 1; }
# The serve environment for ndr-serve (.venv-serve from /usr/bin/python3: PyTriton does not run
# on every CPython). Optional: where it cannot be made, the main setup still succeeds.
if [ "${NDR_SKIP_SERVE:-0}" != 1 ]; then
  bash scripts/setup_serve.sh \
    || echo "setup: warning: .venv-serve could not be made, so ndr-serve will not run here (see scripts/setup_serve.sh)" >&2
fi
