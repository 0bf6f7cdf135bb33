"""Benchmark of the torch-free runtime on CPU (ONNX Runtime): a script, not a timed test.

Given an export folder (every precision variant in its manifest) or ONNX files, it measures

- latency per frame at 256x256 (whole frame) and 1280x720 (tiled) for each variant;
- peak memory (VmHWM) restoring one 720p, 1080p and 4K frame tiled, each size in its own
  process so the peaks are separate, plus 720p whole-frame for contrast;
- PSNR between tiled and whole-frame output on real photos (scikit-image's demo images
  larger than a tile), at the default tile and overlap;
- a soak of the streaming API (``--soak-frames``, small frames), RSS sampled every
  ``--soak-every`` frames, reporting the growth after warm-up.

Writes JSON (``--json``) and prints a table.

    python benchmarks/runtime_bench.py /tmp/export --json bench.json
    python benchmarks/runtime_bench.py model-fp32.onnx model-fp16.onnx --soak-frames 2000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import Manifest, atomic_write_json
from ndr_edge.export.variants import DEFAULT_OVERLAP, DEFAULT_TILE
from ndr_edge.runtime import Restorer, TileConfig
from ndr_edge.runtime.tiling import tile_starts

SIZES = {"256": (256, 256), "720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}


@dataclass(frozen=True)
class Variant:
    name: str
    path: Path  # an .onnx file or the export folder
    precision: str


def find_variants(paths: list[str]) -> list[Variant]:
    variants = []
    for text in paths:
        path = Path(text)
        if path.is_dir() or path.name == "manifest.json":
            manifest = Manifest.read(path)
            folder = path if path.is_dir() else path.parent
            for entry in manifest.artifacts:
                if entry.format == "onnx":
                    variants.append(Variant(entry.name, folder, entry.precision))
        else:
            with Restorer.open(path, backend="onnxruntime") as restorer:
                variants.append(Variant(path.stem, path, restorer.meta.precision))
    if not variants:
        raise SystemExit("runtime_bench: no ONNX variant found in " + ", ".join(paths))
    return variants


def open_variant(variant: Variant, args: argparse.Namespace) -> Restorer:
    tiling = TileConfig(args.tile, args.overlap, args.tile_batch)
    return Restorer.open(variant.path, backend="onnxruntime", precision=variant.precision, providers=["cpu"],
                         tiling=tiling, threads=args.threads)


# -- memory -------------------------------------------------------------------------------
def rss_mb() -> float:
    """Current resident set size (MB): psutil when installed, else /proc/self/status."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        return _proc_status("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    value = _proc_status("VmHWM")
    if value > 0:
        return value
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KB


def _proc_status(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: peak RSS after loading and two tile-sized runs, then after one frame."""
    variant = Variant(args.variant_name, Path(args.variant_path), args.variant_precision)
    height, width = SIZES[args.memory_child]
    whole = args.memory_whole
    with open_variant(variant, args) as restorer:
        side = min(restorer.tiling.tile, height, width)
        for _ in range(2):  # ONNX Runtime plans its memory pattern on the 2nd run of a shape
            restorer.restore(_frame(side, side), tile=False)
        baseline = peak_rss_mb()  # model + backend arena at the tile size
        frame = _frame(height, width)
        start = time.perf_counter()
        out = restorer.restore(frame, tile=not whole)
        seconds = time.perf_counter() - start
        assert out.shape == frame.shape
    rows = len(tile_starts(height, args.tile, args.overlap))
    cols = len(tile_starts(width, args.tile, args.overlap))
    print(json.dumps({"size": args.memory_child, "whole_frame": whole, "tiles": 0 if whole else rows * cols,
                      "peak_after_tile_warmup_mb": round(baseline, 1), "peak_mb": round(peak_rss_mb(), 1),
                      "frame_io_mb": round(2 * frame.nbytes / 2**20, 1), "seconds": round(seconds, 2)}))


def bench_memory(variant: Variant, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    runs = [(size, False) for size in args.memory_sizes] + ([("720p", True)] if args.memory_whole_720p else [])
    for size, whole in runs:
        cmd = [sys.executable, __file__, "--memory-child", size, "--variant-name", variant.name,
               "--variant-path", str(variant.path), "--variant-precision", variant.precision,
               "--tile", str(args.tile), "--overlap", str(args.overlap), "--tile-batch", str(args.tile_batch)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if whole:
            cmd.append("--memory-whole")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            results.append({"size": size, "whole_frame": whole, "error": done.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  memory {variant.name} {size}{' whole' if whole else ' tiled'}: {results[-1]}", flush=True)
    return results


# -- latency ------------------------------------------------------------------------------
def bench_latency(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with open_variant(variant, args) as restorer:
        for label, size, tile in (("256x256", "256", False), ("720p_tiled", "720p", True)):
            frame = _frame(*SIZES[size])
            restorer.restore(frame, tile=tile)  # warm-up
            times = []
            for _ in range(args.runs if label == "256x256" else args.runs_720p):
                start = time.perf_counter()
                restorer.restore(frame, tile=tile)
                times.append(time.perf_counter() - start)
            result[label] = {"median_ms": round(float(np.median(times)) * 1e3, 1),
                             "min_ms": round(min(times) * 1e3, 1), "runs": len(times)}
            print(f"  latency {variant.name} {label}: {result[label]}", flush=True)
    return result


# -- tiled vs whole -----------------------------------------------------------------------
def bench_psnr(variant: Variant, args: argparse.Namespace) -> list[dict[str, Any]]:
    from ndr_edge.imageio import demo_images

    rows = []
    with open_variant(variant, args) as restorer:
        for name, image in demo_images("all"):
            if not restorer.tiling.needed(*image.shape[:2]):
                continue
            whole = restorer.restore(image, tile=False).astype(np.float64) / 255.0
            tiled = restorer.restore(image, tile=True).astype(np.float64) / 255.0
            mse = float(np.mean((whole - tiled) ** 2))
            psnr = float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
            rows.append({"image": name, "size": f"{image.shape[1]}x{image.shape[0]}", "psnr_db": round(psnr, 2),
                         "max_abs_levels": int(np.abs(whole - tiled).max() * 255 + 0.5)})
            print(f"  tiled-vs-whole {variant.name} {name}: {rows[-1]}", flush=True)
    return rows


# -- soak ---------------------------------------------------------------------------------
def bench_soak(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    frames = [_frame(args.soak_size, args.soak_size, seed) for seed in range(8)]
    samples: list[tuple[int, float]] = []
    with open_variant(variant, args) as restorer, restorer.stream(channel_order="BGR", depth=2) as stream:
        source = itertools.islice(itertools.cycle(frames), args.soak_frames)
        for index, _ in enumerate(stream.run(source), start=1):
            if index % args.soak_every == 0 or index == args.soak_frames:
                samples.append((index, rss_mb()))
                if index % (args.soak_every * 4) == 0:
                    print(f"  soak {index}/{args.soak_frames}: rss {samples[-1][1]:.1f} MB", flush=True)
        stats = stream.stats()
    warm = [s for s in samples if s[0] >= min(args.soak_warmup, args.soak_frames // 2)] or samples
    x = np.array([s[0] for s in warm], dtype=np.float64)
    y = np.array([s[1] for s in warm], dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0]) * 1000 if len(warm) >= 2 else 0.0
    return {"frames": args.soak_frames, "size": f"{args.soak_size}x{args.soak_size}",
            "rss_first_mb": round(samples[0][1], 1), "rss_after_warmup_mb": round(warm[0][1], 1),
            "rss_final_mb": round(samples[-1][1], 1), "growth_after_warmup_mb": round(warm[-1][1] - warm[0][1], 2),
            "slope_mb_per_1000_frames": round(slope, 3), "samples": samples, "stream": stats.to_dict()}


# -- report -------------------------------------------------------------------------------
def print_table(report: dict[str, Any]) -> None:
    print("\n== latency per frame (ONNX Runtime, CPU) ==")
    print(f"{'variant':<24}{'precision':<10}{'256x256 ms':>12}{'720p tiled ms':>15}")
    for name, item in report["latency"].items():
        print(f"{name:<24}{item['precision']:<10}{item['256x256']['median_ms']:>12.1f}"
              f"{item['720p_tiled']['median_ms']:>15.1f}")
    if report.get("memory"):
        print("\n== peak RSS restoring one frame (own process per size) ==")
        print(f"{'variant':<24}{'size':<8}{'mode':<7}{'tiles':>6}{'peak MB':>9}{'after warm-up MB':>17}{'frame in+out MB':>17}")
        for name, rows in report["memory"].items():
            for row in rows:
                if "error" in row:
                    print(f"{name:<24}{row['size']:<8}error: {row['error']}")
                    continue
                mode = "whole" if row["whole_frame"] else "tiled"
                print(f"{name:<24}{row['size']:<8}{mode:<7}{row['tiles']:>6}{row['peak_mb']:>9.1f}"
                      f"{row['peak_after_tile_warmup_mb']:>17.1f}{row['frame_io_mb']:>17.1f}")
    if report.get("psnr"):
        print(f"\n== tiled vs whole-frame PSNR (tile {report['settings']['tile']}, overlap {report['settings']['overlap']}) ==")
        for name, rows in report["psnr"].items():
            for row in rows:
                print(f"{name:<24}{row['image']:<20}{row['size']:>11}{row['psnr_db']:>9.2f} dB"
                      f"  max |diff| {row['max_abs_levels']} levels")
    if report.get("soak"):
        soak = report["soak"]
        print(f"\n== streaming soak: {soak['frames']} frames of {soak['size']} ==")
        print(f"RSS {soak['rss_first_mb']} MB first sample, {soak['rss_after_warmup_mb']} MB after warm-up, "
              f"{soak['rss_final_mb']} MB at the end: growth {soak['growth_after_warmup_mb']} MB, "
              f"slope {soak['slope_mb_per_1000_frames']} MB / 1000 frames; "
              f"{soak['stream']['fps']:.1f} FPS, p50 {soak['stream']['p50_ms']:.1f} ms, "
              f"p95 {soak['stream']['p95_ms']:.1f} ms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="export folder(s) and/or .onnx files")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE)
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    parser.add_argument("--tile-batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--runs", type=int, default=5, help="timed runs at 256x256")
    parser.add_argument("--runs-720p", type=int, default=2, help="timed runs at 720p")
    parser.add_argument("--memory-sizes", nargs="*", default=["720p", "1080p", "4k"], choices=list(SIZES))
    parser.add_argument("--memory-variants", choices=["first", "all"], default="first")
    parser.add_argument("--no-memory-whole-720p", dest="memory_whole_720p", action="store_false")
    parser.add_argument("--psnr-variants", choices=["first", "all", "none"], default="first")
    parser.add_argument("--soak-frames", type=int, default=10000)
    parser.add_argument("--soak-size", type=int, default=32)
    parser.add_argument("--soak-every", type=int, default=250)
    parser.add_argument("--soak-warmup", type=int, default=1000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "memory", "psnr", "soak"])
    # internal: one memory measurement in a child process
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-whole", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant-name", help=argparse.SUPPRESS)
    parser.add_argument("--variant-path", help=argparse.SUPPRESS)
    parser.add_argument("--variant-precision", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return
    if not args.models:
        raise SystemExit("runtime_bench: pass an export folder or ONNX files")
    variants = find_variants(args.models)
    import onnxruntime

    report: dict[str, Any] = {
        "settings": {"tile": args.tile, "overlap": args.overlap, "tile_batch": args.tile_batch,
                     "threads": args.threads, "models": args.models},
        "machine": {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                    "cpus": os.cpu_count(), "platform": platform.platform()},
        "latency": {}, "memory": {}, "psnr": {}, "soak": None,
    }
    print(f"variants: {', '.join(f'{v.name} ({v.precision})' for v in variants)}", flush=True)
    for index, variant in enumerate(variants):
        if "latency" not in args.skip:
            report["latency"][variant.name] = {"precision": variant.precision, **bench_latency(variant, args)}
        if "memory" not in args.skip and (index == 0 or args.memory_variants == "all"):
            report["memory"][variant.name] = bench_memory(variant, args)
        if "psnr" not in args.skip and args.psnr_variants != "none" and (index == 0 or args.psnr_variants == "all"):
            report["psnr"][variant.name] = bench_psnr(variant, args)
    if "soak" not in args.skip and args.soak_frames > 0:
        report["soak"] = {"variant": variants[0].name, **bench_soak(variants[0], args)}
    if args.json:
        atomic_write_json(args.json, report)
    print_table(report)


if __name__ == "__main__":
    main()
