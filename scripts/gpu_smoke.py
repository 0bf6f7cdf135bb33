#!/usr/bin/env python
"""GPU smoke test of the export: run it on a machine with an NVIDIA GPU and TensorRT 10.x/11.x.

    python scripts/gpu_smoke.py [CHECKPOINT] [-o OUTDIR] [--min 1x3x64x64 --opt 1x3x256x256 --max 4x3x512x512]

Exports CHECKPOINT (default: the bundled ``ndr_edge/assets/*.safetensors``) with every
precision and both TensorRT engines (``--engine``: it fails if TensorRT or the GPU is
missing), then reloads each engine independently through the runtime's TensorRT backend
(``ndr_edge.runtime.backends.open_backend``), runs it on the degraded verification images, compares it with ONNX Runtime (the FP32 graph and the
engine's own ONNX graph) and prints one verification table, plus the median latency of
each engine at the profile's opt shape. Exit status 1 when an engine misses its threshold.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.export.variants import DEFAULT_WORKSPACE_MB

REPO = Path(__file__).resolve().parents[1]

# PSNR an engine must reach against its own ONNX graph run by ONNX Runtime (CPU)
THRESHOLDS_DB = {"fp16": 40.0, "int8": 30.0}


def _default_checkpoint() -> str:
    found = sorted(glob.glob(str(REPO / "ndr_edge" / "assets" / "*.safetensors")))
    if not found:
        sys.exit("gpu_smoke: no bundled checkpoint in ndr_edge/assets/; pass a checkpoint path")
    return found[0]


def _latency_ms(run: Any, shape: tuple[int, ...], repeats: int = 20) -> float:
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(3):
        run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="checkpoint (.safetensors or the authors' .pth)")
    parser.add_argument("-o", "--outdir", default="gpu-smoke-export")
    parser.add_argument("--min", default="1x3x64x64")
    parser.add_argument("--opt", default="1x3x256x256")
    parser.add_argument("--max", default="4x3x512x512")
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB)
    parser.add_argument("--calibration", help="INT8 calibration set folder (default: the demo recipe)")
    args = parser.parse_args(argv)

    from ndr_edge.checkpoint import load_checkpoint
    from ndr_edge.export.compare import compare_outputs, onnx_outputs, run_batches
    from ndr_edge.export.pipeline import ExportConfig, Exporter
    from ndr_edge.export.profiles import Profile
    from ndr_edge.export.tensorrt_build import tensorrt_status
    from ndr_edge.export.variants import BY_NAME
    from ndr_edge.runtime.backends import open_backend
    from ndr_edge.runtime.tensorrt_env import gpu_info

    available, status = tensorrt_status()
    print(f"TensorRT: {status}")
    if not available:
        return 2
    print(f"GPU: {json.dumps(gpu_info())}")
    profile = Profile.parse(args.min, args.opt, args.max)
    config = ExportConfig(engines="require", profiles=(profile,), workspace_mb=args.workspace_mb,
                          calibration=Path(args.calibration) if args.calibration else None)
    checkpoint = args.checkpoint or _default_checkpoint()
    loaded = load_checkpoint(checkpoint)
    exporter = Exporter(loaded, args.outdir, config)
    manifest = exporter.run()
    data = exporter.verification_data
    assert data is not None
    outdir = Path(args.outdir)
    fp32 = onnx_outputs(outdir / BY_NAME["onnx-fp32"].filename, data)

    rows, failed = [], False
    for entry in manifest.artifacts:
        if entry.format != "engine":
            continue
        with open_backend(outdir / entry.path, "tensorrt") as engine:
            outputs = run_batches(engine.infer, data)
            latency = _latency_ms(engine.infer, profile.opt)
            how = engine.describe()
        source = outdir / BY_NAME[BY_NAME[entry.name].source or ""].filename
        own = onnx_outputs(source, data)
        vs_fp32, vs_own = compare_outputs(fp32, outputs), compare_outputs(own, outputs)
        ok = vs_own.psnr_db >= THRESHOLDS_DB[entry.precision]
        failed |= not ok
        rows.append((entry.name, vs_fp32.psnr_db, vs_own.psnr_db, vs_own.max_abs, latency,
                     "ok" if ok else f"FAIL (< {THRESHOLDS_DB[entry.precision]:.0f} dB)", how))
    print()
    print(f"{'artifact':<12} {'dB vs FP32 ONNX':>16} {'dB vs own ONNX':>15} {'max abs':>10} {'ms @opt':>9}  check")
    for name, a, b, m, ms, check, how in rows:
        print(f"{name:<12} {a:>16.2f} {b:>15.2f} {m:>10.2e} {ms:>9.2f}  {check}  [{how}]")
    for entry in manifest.artifacts:
        if entry.format == "onnx":
            v = entry.verification
            headline = (f"max abs {v['vs_torch_max_abs']:.2e} vs PyTorch" if "vs_torch_max_abs" in v
                        else f"{v.get('vs_fp32_psnr_db')} dB vs FP32")
            print(f"{entry.name:<12} (ONNX Runtime CPU) {headline}")
    if not rows:
        print("no engine was built")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
