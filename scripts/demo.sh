#!/usr/bin/env bash
# The main job on a fresh machine: install (scripts/setup.sh), then export the bundled
# ndr-edge-xs checkpoint to verified ONNX FP32 / FP16 / INT8 (+ TensorRT engines where
# TensorRT and a GPU exist) and measure every variant: out/demo/report.md.
# Extra arguments go to ndr-export (e.g. --precision fp32,fp16 or --no-engine).
# NDR_DEMO_OUT=DIR writes elsewhere; NDR_SKIP_SETUP=1 skips the install (the smoke test uses both).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${NDR_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi
exec .venv/bin/ndr-export ndr_edge/assets/ndr-edge-xs-demo.safetensors -o "${NDR_DEMO_OUT:-out/demo}" --report "$@"
