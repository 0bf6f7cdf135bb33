"""Does the INT8 quality search need dark and grey frames? Quantises an export's FP32 graph
twice, once with the default search set (crops of the two held-out colour photos) and once
with greyscale and darkened copies of the same crops added, then scores both INT8 graphs
against FP32 per frame on `ndr-eval`'s held-out images (which neither search sees) for one
degradation. Prints JSON: per-frame dB lost and the layers each search kept in float.

    python benchmarks/int8_dark_frames.py out/demo --degradation lowres4   # about 12 min on 2 cores (session 12: moon 16.4 -> 5.2 dB)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from ndr_edge.calibration import quantize_int8
from ndr_edge.calibration.evaluate import DEFAULT_EVAL_CROPS, DEFAULT_EVAL_SIDE, evaluate_onnx
from ndr_edge.cli.evaluate import PROCEDURAL_EVAL_SEED
from ndr_edge.data import spread_crops, synthetic_eval_set
from ndr_edge.data.datasets import to_grey
from ndr_edge.data.procedural import dead_leaves_set
from ndr_edge.degradations import EVAL_NAMES
from ndr_edge.frames import to_float
from ndr_edge.imageio import demo_images


def darkened(image: np.ndarray, level: float = 0.12, contrast: float = 0.5) -> np.ndarray:
    """A flat, dark copy of a float RGB image: contrast about the mean scaled by ``contrast``,
    mean moved to ``level`` (clipped to [0, 1])."""
    return np.clip(contrast * (image - image.mean()) + level, 0.0, 1.0).astype(np.float32)


def search_sets() -> dict[str, list]:
    colour = [(n, to_float(im)) for n, im in spread_crops(demo_images("heldout"), DEFAULT_EVAL_SIDE, DEFAULT_EVAL_CROPS)]
    extra = [(f"{n}-grey", to_grey(im)) for n, im in colour] + [(f"{n}-dark", darkened(to_grey(im))) for n, im in colour]
    names = list(EVAL_NAMES)
    return {"default": list(synthetic_eval_set(colour, names, seed=0, max_side=DEFAULT_EVAL_SIDE)),
            "grey+dark": list(synthetic_eval_set(colour + extra, names, seed=0, max_side=DEFAULT_EVAL_SIDE))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", nargs="?", default="out/demo", help="export folder with model-fp32.onnx")
    parser.add_argument("--degradation", default="lowres4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default="default,grey+dark", help="comma list of search sets to try")
    args = parser.parse_args()
    fp32 = Path(args.export) / "model-fp32.onnx"
    if not fp32.exists():
        raise SystemExit(f"{fp32}: missing; give an ndr-export folder")
    frames = demo_images("eval") + dead_leaves_set(4, 256, PROCEDURAL_EVAL_SEED)
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {}
        wanted = args.sets.split(",")
        for label, samples in search_sets().items():
            if label not in wanted:
                continue
            out = Path(tmp) / f"int8-{label}.onnx"
            result = quantize_int8(fp32, out, eval_set=samples, threads=args.threads, progress=True)
            searched = [e["node"] for e in result.excluded if not e["reason"].startswith("settings")]
            report[label] = {"search_frames": len(samples), "search_loss_db": result.loss_db,
                             "within_budget": result.within_budget, "searched_float": searched}
            graphs[label] = out
        per_frame: dict[str, dict[str, float]] = {}
        for name, image in frames:
            sample = synthetic_eval_set([(name, image)], [args.degradation], seed=0, max_side=256)
            ref = evaluate_onnx(fp32, sample, threads=args.threads).psnr[args.degradation]
            per_frame[name] = {"fp32_psnr": round(ref, 2)} | {
                label: round(ref - evaluate_onnx(path, sample, threads=args.threads).psnr[args.degradation], 3)
                for label, path in graphs.items()}
            print(name, per_frame[name], flush=True)
    report["held_out_loss_db"] = per_frame
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
