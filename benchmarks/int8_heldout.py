"""INT8 against FP32 on `ndr-eval`'s held-out set, which the INT8 search never sees: the 8
held-out photos and 4 dead-leaves images, centre 256 px, 7 degradations (84 frames). Prints
the dB lost per degradation for each INT8 graph of an export folder, as JSON.

    python benchmarks/int8_heldout.py out/demo            # about 4 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ndr_edge.calibration.evaluate import evaluate_onnx
from ndr_edge.cli.evaluate import PROCEDURAL_EVAL_SEED
from ndr_edge.data import synthetic_eval_set
from ndr_edge.data.procedural import dead_leaves_set
from ndr_edge.imageio import demo_images

NAMES = ["noise15", "noise25", "noise50", "rain", "haze", "lowres4", "mix"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", nargs="?", default="out/demo", help="export folder with model-*.onnx")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    args = parser.parse_args()
    folder = Path(args.export)
    images = demo_images("eval") + dead_leaves_set(4, 256, PROCEDURAL_EVAL_SEED)
    samples = synthetic_eval_set(images, NAMES, seed=0, max_side=256)
    graphs = [f for f in ("fp32", "int8", "int8-trt") if (folder / f"model-{f}.onnx").exists()]
    if "fp32" not in graphs:
        raise SystemExit(f"{folder}: no model-fp32.onnx; give an ndr-export folder")
    scores = {f: evaluate_onnx(folder / f"model-{f}.onnx", samples, threads=args.threads) for f in graphs}
    out = {f"loss_db_{f}": scores[f].loss_against(scores["fp32"]) for f in graphs if f != "fp32"}
    print(json.dumps({**out, "fp32_psnr": scores["fp32"].psnr, "images": scores["fp32"].images}, indent=1))


if __name__ == "__main__":
    main()
