#!/usr/bin/env python
"""ONNX Runtime FP32 speed of the exported graph before and after the speed passes
(:mod:`ndr_edge.export.graph_speed`), against PyTorch eager: a benchmark, not a timed test.

For one model (default: the published ``ndr-restore`` configuration with random weights,
seed 0; ``--checkpoint`` for a real one, e.g. the bundled ndr-edge-xs demo) this

1. traces the restoration network to ONNX and simplifies it (onnxsim) as ``ndr-export``
   does: the graph *before* (``--before`` reuses one saved by ``--save``); runs the speed
   passes on it: the graph *after*;
2. checks on the benchmark input that both graphs agree with PyTorch (max abs difference);
3. times PyTorch eager, ORT on *before* and ORT on *after* in ONE loop in one process on
   the same input (1x3xSxS, default 256; ``--threads``, default 2, for all three), the
   order rotating each round, and reports the median of each and the ratios
   ``after / torch`` and ``after / before``;
4. with ``--cpu-rounds N``, the same loop again at one thread, timed by the CPU time of
   the calling thread (both runtimes run a one-thread inference on the caller's thread):
   a measure that another process competing for the cores cannot stretch;
5. profiles both graphs by op type (ONNX Runtime's profiler, after its graph optimisation).

Random weights: every LayerNorm affine is drawn around (1, 0) (``--plain-norms`` keeps the
initial ones/zeros, which onnxsim removes and a trained checkpoint never has), so the
graphs have the per-channel Mul/Add a real checkpoint gives.

On a busy machine only ratios measured in one such loop mean anything.

    python benchmarks/ort_speed_bench.py --json ort-speed.json                  # ndr-restore
    python benchmarks/ort_speed_bench.py --checkpoint ndr_edge/assets/ndr-edge-xs-demo.safetensors
    python benchmarks/ort_speed_bench.py --size 128 --repeats 0 --cpu-rounds 3 --profile-runs 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_model(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(restoration graph module, ArtifactMeta, description)."""
    import torch

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.export.onnx_export import restoration_graph

    if args.checkpoint:
        from ndr_edge.checkpoint import load_checkpoint

        ckpt = load_checkpoint(Path(args.checkpoint))
        meta = ArtifactMeta(preset=ckpt.preset, channel_order=ckpt.channel_order,
                            value_range=tuple(ckpt.value_range))  # type: ignore[arg-type]
        return restoration_graph(ckpt.model), meta, f"checkpoint {args.checkpoint} ({ckpt.preset})"
    from ndr_edge.model import NDRRestore, get_preset
    from ndr_edge.model.blocks import LayerNorm

    torch.manual_seed(args.seed)
    model = NDRRestore(get_preset(args.preset), with_degradation_net=False)
    with torch.no_grad():
        if not args.plain_norms:
            for module in model.modules():
                if isinstance(module, LayerNorm):
                    module.body.weight.add_(0.1 * torch.randn_like(module.body.weight))
                    module.body.bias.add_(0.1 * torch.randn_like(module.body.bias))
        exit_conv = model.restoration_net.reconstruction  # the edge presets start it at zero
        if not exit_conv.weight.abs().sum():
            torch.nn.init.normal_(exit_conv.weight, std=0.05)
    return restoration_graph(model.eval()), ArtifactMeta(preset=args.preset), f"{args.preset}, random weights, seed {args.seed}"


def graphs(module: Any, meta: Any, args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    from ndr_edge.export.graph_speed import speed_up
    from ndr_edge.export.onnx_export import export_onnx
    from ndr_edge.export.simplify import op_counts, simplify

    start = time.perf_counter()
    if args.before:  # a graph saved by an earlier run (--save) of the same model: no tracing
        import onnx

        before = onnx.load(args.before)
        simplified = None
    else:
        traced = export_onnx(module, meta)
        simplified = simplify(traced)
        if not simplified.simplified:
            print(f"ort_speed_bench: onnxsim did not simplify ({simplified.reason}); timing the traced graph",
                  file=sys.stderr)
        before = simplified.model
    from ndr_edge.export.graph_speed import DEFAULT_PASSES

    result = speed_up(before, tuple(args.passes) if args.passes else DEFAULT_PASSES, size_multiple=meta.size_multiple)
    info = {"export_seconds": round(time.perf_counter() - start, 1), "before_from": args.before or "traced + onnxsim",
            **{f"speed_{k}": v for k, v in result.details().items()}, "op_counts_before": op_counts(before)}
    if simplified is not None:
        info.update(traced_nodes=simplified.nodes_before, simplified=simplified.simplified)
    return before, result.model, info


def session(model_bytes: bytes, threads: int) -> Any:
    """The runtime's own ONNX Runtime backend (its SessionOptions), CPU provider."""
    from ndr_edge.runtime.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeSettings

    return OnnxRuntimeBackend(model_bytes, OnnxRuntimeSettings(providers=("cpu",), threads=threads))


def op_profile(model_bytes: bytes, shape: tuple[int, ...], threads: int, runs: int) -> dict[str, float]:
    from ndr_edge.calibration.evaluate import op_time_profile

    with tempfile.TemporaryDirectory(prefix="ort-speed-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model_bytes)
        return op_time_profile(path, shape=shape, threads=threads, runs=runs)  # type: ignore[arg-type]


def interleaved(runners: dict[str, Any], x: np.ndarray, warmup: int, repeats: int, clock: Any,
                label: str, gap_s: float = 0.0, block: int = 1) -> dict[str, list[float]]:
    """ms per run of each runner, all in one loop: every round runs each once, the order
    rotating from round to round; the first ``warmup`` rounds are not kept. ``gap_s``: an
    untimed pause before each runner's turn, so the previous runtime's spinning worker threads
    are idle. ``block`` > 1: each turn runs the runner ``block`` times back to back and keeps
    all but the first (which brings its weights back into the caches), as a model that runs
    frame after frame does."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + repeats):
        order = names[index % len(names):] + names[:index % len(names)]
        for name in order:
            if gap_s:
                time.sleep(gap_s)
            for run in range(block):
                start = clock()
                runners[name](x)
                if index >= warmup and (run or block == 1):
                    times[name].append((clock() - start) * 1000.0)
        print(f"{label} round {index + 1}/{warmup + repeats}: "
              + ", ".join(f"{n} {times[n][-1]:.0f} ms" for n in names if times[n]), file=sys.stderr)
    return times


def summarise(times: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float], dict[str, list[float]]]:
    """Medians, the ratios of the medians, and the same ratios round by round."""
    median = {name: statistics.median(values) for name, values in times.items()}
    pairs = {"ort_before_vs_torch": ("ort_before", "torch_eager"), "ort_after_vs_torch": ("ort_after", "torch_eager"),
             "ort_after_vs_ort_before": ("ort_after", "ort_before")}
    ratios = {key: median[a] / median[b] for key, (a, b) in pairs.items()}
    per_round = {key: [p / q for p, q in zip(times[a], times[b])] for key, (a, b) in pairs.items()}
    return median, ratios, per_round


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ndr-restore", help="preset with random weights (default ndr-restore)")
    parser.add_argument("--checkpoint", help="a checkpoint instead of random weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-norms", action="store_true", help="keep the LayerNorm affine at ones/zeros")
    parser.add_argument("--size", type=int, default=256, help="input height and width (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="threads for PyTorch and ONNX Runtime (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, wall clock (default 5; 0: none)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--cpu-rounds", type=int, default=0,
                        help="also time each at one thread by the thread's CPU time, this many rounds (default 0)")
    parser.add_argument("--profile-runs", type=int, default=1, help="profiled runs per graph (0: no profile)")
    parser.add_argument("--passes", nargs="*", help="speed passes to run (default: ndr-export's, every pass)")
    parser.add_argument("--save", help="folder to write before.onnx and after.onnx into")
    parser.add_argument("--before", help="the graph before, saved by an earlier --save of the same model (skips tracing)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    import torch

    from ndr_edge.export.onnx_export import serialize

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    module, meta, description = build_model(args)
    before, after, info = graphs(module, meta, args)
    blobs = {"ort_before": serialize(before), "ort_after": serialize(after)}
    if args.save:
        folder = Path(args.save)
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in blobs.items():
            (folder / f"{name.removeprefix('ort_')}.onnx").write_bytes(blob)
    shape = (1, 3, args.size, args.size)
    x = np.random.default_rng(args.seed).random(shape, dtype=np.float32)
    sessions = {name: session(blob, args.threads) for name, blob in blobs.items()}

    def torch_run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    runners = {"torch_eager": torch_run, **{name: s.infer for name, s in sessions.items()}}
    reference = torch_run(x)
    agreement = {name: float(np.abs(s.infer(x) - reference).max()) for name, s in sessions.items()}
    agreement["after_vs_before"] = float(np.abs(sessions["ort_after"].infer(x) - sessions["ort_before"].infer(x)).max())
    names = list(runners)
    median: dict[str, float] = {}
    ratios: dict[str, float] = {}
    per_round: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    if args.repeats > 0:
        times = interleaved(runners, x, args.warmup, args.repeats, time.perf_counter, "wall")
        median, ratios, per_round = summarise(times)
    cpu_single: dict[str, Any] = {}
    if args.cpu_rounds > 0:  # one thread each, CPU time of the calling thread: what contention cannot stretch
        torch.set_num_threads(1)
        single = {name: session(blob, 1) for name, blob in blobs.items()}
        cpu_times = interleaved({"torch_eager": torch_run, **{n: s.infer for n, s in single.items()}}, x,
                                1, args.cpu_rounds, time.thread_time, "cpu, 1 thread")
        cpu_median, cpu_ratios, _ = summarise(cpu_times)
        cpu_single = {"median_ms": {k: round(v, 2) for k, v in cpu_median.items()},
                      "times_ms": {k: [round(v, 2) for v in vs] for k, vs in cpu_times.items()},
                      "ratios": {k: round(v, 4) for k, v in cpu_ratios.items()}}
        torch.set_num_threads(args.threads)
    profiles = {}
    if args.profile_runs > 0:
        for name, blob in blobs.items():
            profiles[name] = op_profile(blob, shape, args.threads, args.profile_runs)
    import onnxruntime

    results: dict[str, Any] = {
        "model": description, "input": list(shape), "threads": args.threads, "repeats": args.repeats,
        "warmup": args.warmup, "median_ms": {k: round(v, 2) for k, v in median.items()},
        "times_ms": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
        "ratios_per_round_median": {k: round(statistics.median(v), 4) for k, v in per_round.items() if v},
        "cpu_time_single_thread": cpu_single,
        "max_abs_vs_torch": agreement, "graphs": info, "op_profile_ms": profiles,
        "loadavg_start": [round(v, 2) for v in load_start], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "versions": {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
    }
    print(f"\n{description}, input {'x'.join(map(str, shape))}, {args.threads} threads, "
          f"{args.repeats} rounds (load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f})")
    if median:
        print(f"wall clock, {args.threads} threads, median of {args.repeats} rounds:")
        print(f"{'':14s} {'median ms':>10s} {'vs torch':>9s} {'vs before':>10s} {'max abs vs torch':>17s}")
        for name in names:
            vs_before = median[name] / median["ort_before"] if name.startswith("ort") else float("nan")
            err = agreement.get(name, 0.0)
            print(f"{name:14s} {median[name]:10.1f} {median[name] / median['torch_eager']:9.3f} {vs_before:10.3f} "
                  f"{err:17.2e}")
    else:
        print("max abs vs torch: " + ", ".join(f"{k} {v:.2e}" for k, v in agreement.items()))
    if cpu_single:
        cm = cpu_single["median_ms"]
        print(f"one thread, CPU time of the thread ({args.cpu_rounds} rounds): "
              + ", ".join(f"{n} {cm[n]:.0f} ms" for n in names)
              + f"; after/torch {cm['ort_after'] / cm['torch_eager']:.3f}, after/before {cm['ort_after'] / cm['ort_before']:.3f}")
    print(f"nodes {info['speed_nodes_before']} -> {info['speed_nodes_after']}; passes {info['speed_passes']}")
    if profiles:
        ops = sorted(set(profiles["ort_before"]) | set(profiles["ort_after"]),
                     key=lambda op: -max(profiles["ort_before"].get(op, 0), profiles["ort_after"].get(op, 0)))
        totals = {k: sum(v.values()) for k, v in profiles.items()}
        print(f"\n{'op type':22s} {'before ms':>10s} {'%':>6s} {'after ms':>10s} {'%':>6s}")
        for op in ops:
            b, a = profiles["ort_before"].get(op, 0.0), profiles["ort_after"].get(op, 0.0)
            print(f"{op:22s} {b:10.1f} {100 * b / totals['ort_before']:6.1f} {a:10.1f} {100 * a / totals['ort_after']:6.1f}")
        print(f"{'total':22s} {totals['ort_before']:10.1f} {'':6s} {totals['ort_after']:10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
