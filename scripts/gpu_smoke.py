#!/usr/bin/env python
"""GPU smoke test of the TensorRT path: run it on a machine with an NVIDIA GPU and TensorRT 10.x/11.x.

    python scripts/gpu_smoke.py [CHECKPOINT] [-o OUTDIR] [--min 1x3x64x64 --opt 1x3x256x256 --max 4x3x512x512]
    python scripts/gpu_smoke.py --export EXPORT_FOLDER      # a folder copied from a workstation (no torch needed)

1. Exports CHECKPOINT (default: the bundled ``ndr_edge/assets/*.safetensors``) with every
   precision and no engines, as a workstation would; or takes ``--export`` as it is.
2. Builds every engine the export can build (FP16 from ``model-fp16.onnx``, INT8 from
   ``model-int8-trt.onnx``) through the runtime's builder and cache
   (``ndr_edge.runtime.engine_cache.build_export_engines``, what ``ndr-build`` runs), then asks
   again: the second call must load every engine from the cache without building.
3. Runs each engine through the runtime's TensorRT backend on degraded verification images,
   compares it with ONNX Runtime (the FP32 graph and the engine's own ONNX graph), and
   prints the table a Jetson or RTX user runs first: PSNR, build time, and the median latency
   at the profile's opt shape beside ONNX Runtime's (CPU FP32, and CUDA on the FP16 graph where
   onnxruntime-gpu is installed).

Exit status 0 when every engine meets its threshold and the cache held, 1 otherwise, 2 when
TensorRT or the GPU is missing.
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


def _ort_latency(path: Path, providers: tuple[str, ...], shape: tuple[int, ...]) -> float | None:
    from ndr_edge.errors import NDREdgeError
    from ndr_edge.runtime.backends import open_backend
    from ndr_edge.runtime.onnxruntime_backend import OnnxRuntimeSettings

    try:
        with open_backend(path, "onnxruntime", OnnxRuntimeSettings(providers=providers)) as backend:
            if providers != ("cpu",) and not backend.providers[0].startswith("CUDA"):
                return None  # asked for CUDA, fell back to the CPU: not the number wanted
            return _latency_ms(backend.infer, shape)
    except NDREdgeError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="checkpoint (.safetensors or the authors' .pth)")
    parser.add_argument("--export", help="an existing export folder (skips the export; no torch needed)")
    parser.add_argument("-o", "--outdir", default="gpu-smoke-export")
    parser.add_argument("--min", default="1x3x64x64")
    parser.add_argument("--opt", default="1x3x256x256")
    parser.add_argument("--max", default="4x3x512x512")
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB)
    parser.add_argument("--calibration", help="INT8 calibration set folder (default: the demo recipe)")
    args = parser.parse_args(argv)

    from ndr_edge.artifact import Manifest
    from ndr_edge.export.compare import build_verification_set, compare_outputs, onnx_outputs, run_batches
    from ndr_edge.export.profiles import Profile
    from ndr_edge.export.tensorrt_build import tensorrt_status
    from ndr_edge.export.variants import BY_NAME
    from ndr_edge.runtime.backends import open_backend
    from ndr_edge.runtime.engine_cache import EngineCacheConfig, build_export_engines
    from ndr_edge.runtime.tensorrt_env import gpu_info

    available, status = tensorrt_status()
    print(f"TensorRT: {status}")
    if not available:
        return 2
    print(f"GPU: {json.dumps(gpu_info())}")
    profile = Profile.parse(args.min, args.opt, args.max)
    if args.export:
        outdir = Path(args.export)
    else:
        from ndr_edge.checkpoint import load_checkpoint
        from ndr_edge.export.pipeline import ExportConfig, Exporter

        config = ExportConfig(engines="off", calibration=Path(args.calibration) if args.calibration else None)
        outdir = Path(args.outdir)
        Exporter(load_checkpoint(args.checkpoint or _default_checkpoint()), outdir, config).run()
    manifest = Manifest.read(outdir)
    meta = next(e for e in manifest.artifacts if e.name == "onnx-fp32")
    cache = EngineCacheConfig(profiles=(profile,), workspace_mb=args.workspace_mb)
    first = build_export_engines(outdir, config=cache)
    second = build_export_engines(outdir, config=cache)
    cache_ok = all(not r.built for r in second) and [r.engine for r in first] == [r.engine for r in second]
    print(f"engine cache: first call built {sum(r.built for r in first)} of {len(first)}, second call built "
          f"{sum(r.built for r in second)} ({'ok' if cache_ok else 'FAIL: the second call should only load'})")

    source = manifest.source
    side = min(profile.opt[2], profile.opt[3]) // 8 * 8
    data = build_verification_set(((side, side), (profile.min[2], profile.min[3])), max(1, profile.min[0]),
                                  source.get("channel_order", "BGR"), tuple(source.get("value_range", (0.0, 1.0))))
    fp32_path = manifest.resolve(outdir, meta)
    fp32 = onnx_outputs(fp32_path, data)
    cpu_ms = _ort_latency(fp32_path, ("cpu",), profile.opt)
    rows, failed = [], not cache_ok
    for result in first:
        precision = result.sidecar.precision
        variant = BY_NAME[f"engine-{precision}"]
        own_path = outdir / BY_NAME[variant.source or ""].filename
        with open_backend(result.engine, "tensorrt") as engine:
            outputs = run_batches(engine.infer, data)
            latency = _latency_ms(engine.infer, profile.opt)
            how = engine.describe()
        vs_fp32, vs_own = compare_outputs(fp32, outputs), compare_outputs(onnx_outputs(own_path, data), outputs)
        ok = vs_own.psnr_db >= THRESHOLDS_DB[precision]
        failed |= not ok
        cuda_ms = _ort_latency(own_path, ("cuda",), profile.opt) if precision == "fp16" else None
        rows.append((variant.name, vs_fp32.psnr_db, vs_own.psnr_db, result.seconds, latency, cuda_ms,
                     "ok" if ok else f"FAIL (< {THRESHOLDS_DB[precision]:.0f} dB)", how))
    print()
    print(f"{'artifact':<12} {'dB vs FP32':>10} {'dB vs own ONNX':>15} {'build s':>8} {'ms @opt':>8} "
          f"{'ORT CUDA ms':>12}  check")
    for name, a, b, built_s, ms, cuda, check, how in rows:
        cuda_text = f"{cuda:.2f}" if cuda is not None else "-"
        print(f"{name:<12} {a:>10.2f} {b:>15.2f} {built_s:>8.0f} {ms:>8.2f} {cuda_text:>12}  {check}  [{how}]")
    print(f"ONNX Runtime CPU FP32 at {'x'.join(map(str, profile.opt))}: "
          + (f"{cpu_ms:.1f} ms" if cpu_ms is not None else "did not run"))
    if not rows:
        print("no engine was built")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
