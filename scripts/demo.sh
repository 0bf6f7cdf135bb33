#!/usr/bin/env bash
# The main job on a fresh machine: install (scripts/setup.sh), then export the bundled
# ndr-edge-xs checkpoint to verified ONNX FP32 / FP16 / INT8 (+ TensorRT engines where
# TensorRT and a GPU exist) and measure every variant: out/demo/report.md.
# Extra arguments go to ndr-export (e.g. --precision fp32,fp16 or --no-engine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ndr-export ndr_edge/assets/ndr-edge-xs-demo.safetensors -o out/demo --report "$@"
