#!/usr/bin/env python
"""Where OpenVINO's CPU time goes: per-layer performance counters of one exported graph at
one input size, summed by layer type and by the kernel OpenVINO chose (``exec_type``, e.g.
``brgconv_avx512_amx_I8`` or ``jit_avx512_bf16``), and the layers kept in float versus the
INT8 ones. A benchmark, not a test; run it with nothing else on the CPU.

    python benchmarks/ov_profile.py out/demo/model-int8.onnx --hint bf16 --threads 2
    python benchmarks/ov_profile.py out/demo/model-fp32.onnx --hint bf16 --top 15
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported ONNX file (model-fp32.onnx, model-int8.onnx, ...)")
    parser.add_argument("--size", type=int, default=256, help="square input side (px)")
    parser.add_argument("--hint", choices=["f32", "bf16"], default="bf16", help="INFERENCE_PRECISION_HINT")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10, help="timed inferences (after 3 untimed)")
    parser.add_argument("--top", type=int, default=12, help="rows per table")
    args = parser.parse_args()

    from ndr_edge.artifact import INPUT_NAME
    from ndr_edge.cpu import cpu_features
    from ndr_edge.runtime.openvino_backend import import_openvino, open_core

    ov = import_openvino()
    if args.hint == "bf16" and not cpu_features().bf16:
        sys.exit("ov_profile: error: this CPU has no AVX512-BF16/AMX; use --hint f32")
    core = open_core()
    model = core.read_model(args.model)
    model.reshape({INPUT_NAME: ov.PartialShape([1, 3, args.size, args.size])})
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": args.hint,
              "INFERENCE_NUM_THREADS": args.threads, "PERF_COUNT": True}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    batch = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    for _ in range(3):
        request.infer({INPUT_NAME: batch})
    by_type: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    walls = []
    for _ in range(args.runs):
        started = time.perf_counter()
        request.infer({INPUT_NAME: batch})
        walls.append(time.perf_counter() - started)
        for info in request.profiling_info:
            if info.status != info.Status.EXECUTED:
                continue
            key = (info.node_type, info.exec_type)
            by_type[key] += info.real_time.total_seconds() / args.runs
            counts[key] += 1
    total = sum(by_type.values())
    wall = float(np.median(walls))
    print(f"{Path(args.model).name}, {args.size}x{args.size}, hint {args.hint}, {args.threads} threads: "
          f"median wall {wall * 1e3:.1f} ms, layers sum {total * 1e3:.1f} ms")

    def table(title: str, rows: dict[str, float], n: dict[str, int]) -> None:
        print(f"\n{title:<46} {'ms':>8} {'share':>7} {'layers':>7}")
        for name, sec in sorted(rows.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{name:<46} {sec * 1e3:8.2f} {sec / total:7.1%} {n[name] // args.runs:7d}")

    node: dict[str, float] = defaultdict(float)
    node_n: dict[str, int] = defaultdict(int)
    kernel: dict[str, float] = defaultdict(float)
    kernel_n: dict[str, int] = defaultdict(int)
    precision: dict[str, float] = defaultdict(float)
    precision_n: dict[str, int] = defaultdict(int)
    for (node_type, exec_type), sec in by_type.items():
        node[node_type] += sec
        node_n[node_type] += counts[(node_type, exec_type)]
        kernel[f"{node_type} / {exec_type}"] += sec
        kernel_n[f"{node_type} / {exec_type}"] += counts[(node_type, exec_type)]
        kind = exec_type.rsplit("_", 1)[-1].upper() if "_" in exec_type else "other"
        precision[kind] += sec
        precision_n[kind] += counts[(node_type, exec_type)]
    table("layer type", node, node_n)
    table("layer type / kernel", kernel, kernel_n)
    table("kernel precision (exec_type suffix)", precision, precision_n)


if __name__ == "__main__":
    main()
