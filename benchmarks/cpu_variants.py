#!/usr/bin/env python
"""Every CPU variant of an export folder in ONE interleaved latency loop: a benchmark, not a
timed test.

`ndr-report` times its rows one after another, so on a shared machine a row timed while
something else ran looks slower than it is. Here every (graph, backend, precision hint) pair
that runs on this machine (the report's own list, :func:`ndr_edge.report.plan.plan_variants`:
ONNX Runtime FP32/FP16/INT8, OpenVINO FP32/FP16/INT8 and its bf16 hint on the FP32 and INT8
graphs where the CPU has native bf16) is opened once through the runtime's backends, then
each round gives every variant a turn on the same 256x256 frame, the order rotating from
round to round. A turn is a 200 ms pause (so the last runtime's spinning worker threads are
idle) and 3 runs back to back of which the last 2 are timed (the first brings the variant's
weights back into the caches, as a model running frame after frame has them); `--block 1
--gap-ms 0` times every run cold instead. It prints the median per variant and its ratio to
ONNX Runtime FP32 (the issue's goal: the best CPU variant <= 0.5x), the median of the
per-round ratios beside it, and the CPU features each result needs (read at run time,
``ndr_edge.cpu``).

Quality is not measured here: ``benchmarks/int8_heldout.py --openvino`` scores the same
variants on ``ndr-eval``'s 84 held-out frames, and the demo report on its own frames.

    python benchmarks/cpu_variants.py out/demo --threads 2              # about 1 min on 2 cores
    python benchmarks/cpu_variants.py out/demo --block 1 --gap-ms 0 --rounds 12 --json out/cpu-cold.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ort_speed_bench import interleaved  # noqa: E402  (the loop ort_speed_bench times with)

REFERENCE = "onnx-fp32"

#: What each precision needs from the CPU to be fast (bf16: to run at all as bf16).
NEEDS = {"fp32": "-", "fp16": "- (FP16 is emulated in float on CPUs)", "int8": "VNNI for INT8 speed",
         "bf16": "AVX512-BF16 or AMX", "int8+bf16": "VNNI and AVX512-BF16 or AMX"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", nargs="?", default="out/demo", help="ndr-export folder (default out/demo)")
    parser.add_argument("--size", type=int, default=256, help="frame height and width (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every runtime (default 2)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--gap-ms", type=float, default=200.0,
                        help="untimed pause before each variant's turn, so the last runtime's spinning threads are "
                             "idle (default 200)")
    parser.add_argument("--block", type=int, default=3,
                        help="runs per variant per turn, back to back, the first untimed: it brings the weights "
                             "back into the caches (default 3)")
    parser.add_argument("--skip-trt-graph", action="store_true", help="leave out the INT8-for-TensorRT graph")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    from ndr_edge.artifact import Manifest
    from ndr_edge.cpu import cpu_features
    from ndr_edge.report.plan import plan_variants
    from ndr_edge.runtime.backends import open_backend, settings_for

    folder = Path(args.export)
    plans = [p for p in plan_variants(folder, Manifest.read(folder), reference=False)
             if p.status == "pending" and p.backend in ("onnxruntime", "openvino")
             and not (args.skip_trt_graph and "int8-trt" in p.name)]
    if not any(p.name == REFERENCE for p in plans):
        raise SystemExit(f"{folder}: no {REFERENCE} variant to compare against")
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    backends = {p.name: open_backend(p.path, p.backend, settings_for(p.backend, threads=args.threads, ov_hint=p.hint))
                for p in plans}
    load_start = os.getloadavg()
    try:
        times = interleaved({n: b.infer for n, b in backends.items()}, x, args.warmup, args.rounds,
                            time.perf_counter, "round",
                            gap_s=args.gap_ms / 1000.0, block=args.block)
    finally:
        for backend in backends.values():
            backend.close()
    median = {n: statistics.median(t) for n, t in times.items()}
    per_round = {n: statistics.median(a / r for a, r in zip(t, times[REFERENCE], strict=True)) for n, t in times.items()}
    features = cpu_features()
    rows = [{"variant": p.name, "backend": p.backend, "precision": p.precision, "median_ms": round(median[p.name], 2),
             "vs_onnx_fp32": round(median[p.name] / median[REFERENCE], 4),
             "vs_onnx_fp32_per_round": round(per_round[p.name], 4), "needs": NEEDS.get(p.precision, "-")}
            for p in plans]
    print(f"\n{folder}: {args.size}x{args.size}, batch 1, {args.threads} threads, {args.rounds} interleaved rounds "
          f"(load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f}); CPU: {features.summary()}")
    print(f"{'variant':34s} {'median ms':>10s} {'vs ORT FP32':>12s} {'per round':>10s}  needs")
    for row in sorted(rows, key=lambda r: r["median_ms"]):
        print(f"{row['variant']:34s} {row['median_ms']:10.1f} {row['vs_onnx_fp32']:11.2f}x "
              f"{row['vs_onnx_fp32_per_round']:9.2f}x  {row['needs']}")
    if args.json:
        out = Path(args.json)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"export": str(folder), "size": args.size, "threads": args.threads,
                                   "rounds": args.rounds, "cpu": features.summary(), "rows": rows,
                                   "times_ms": {n: [round(v, 2) for v in t] for n, t in times.items()},
                                   "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg())}, indent=1))
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
