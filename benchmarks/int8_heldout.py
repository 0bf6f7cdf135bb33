"""INT8 against FP32 on `ndr-eval`'s held-out set, which the INT8 search never sees: the 8
held-out photos and 4 dead-leaves images, centre 256 px, 7 degradations (84 frames). Prints
the dB lost per degradation for each INT8 graph of an export folder, as JSON. With
``--openvino``, also OpenVINO's runs of the graphs (f32, and its bf16 inference hint on the
FP32 and INT8 graphs where the CPU has native bf16), each against ONNX Runtime FP32.

    python benchmarks/int8_heldout.py out/demo            # about 4 min on 2 cores
    python benchmarks/int8_heldout.py out/demo --openvino # about 4 min more
    python benchmarks/int8_heldout.py out/demo --per-frame lowres4   # one degradation, per frame (1 min)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ndr_edge.calibration.evaluate import PSNRByDegradation, evaluate_onnx
from ndr_edge.cli.evaluate import PROCEDURAL_EVAL_SEED
from ndr_edge.data import synthetic_eval_set
from ndr_edge.data.procedural import dead_leaves_set
from ndr_edge.imageio import demo_images

NAMES = ["noise15", "noise25", "noise50", "rain", "haze", "lowres4", "mix"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", nargs="?", default="out/demo", help="export folder with model-*.onnx")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--openvino", action="store_true", help="also score the graphs under OpenVINO (f32, bf16 hint)")
    parser.add_argument("--per-frame", metavar="DEGRADATION", choices=NAMES,
                        help="only this degradation, each frame scored on its own (keys: degradation/image)")
    args = parser.parse_args()
    folder = Path(args.export)
    images = demo_images("eval") + dead_leaves_set(4, 256, PROCEDURAL_EVAL_SEED)
    if args.per_frame:
        samples = [replace(s, degradation=f"{s.degradation}/{s.name}")
                   for s in synthetic_eval_set(images, [args.per_frame], seed=0, max_side=256)]
    else:
        samples = synthetic_eval_set(images, NAMES, seed=0, max_side=256)
    graphs = [f for f in ("fp32", "int8", "int8-trt") if (folder / f"model-{f}.onnx").exists()]
    if "fp32" not in graphs:
        raise SystemExit(f"{folder}: no model-fp32.onnx; give an ndr-export folder")
    scores = {f: evaluate_onnx(folder / f"model-{f}.onnx", samples, threads=args.threads) for f in graphs}
    out = {f"loss_db_{f}": scores[f].loss_against(scores["fp32"]) for f in graphs if f != "fp32"}
    if args.openvino:
        out.update(_openvino_losses(folder, samples, scores["fp32"], args.threads))
    print(json.dumps({**out, "fp32_psnr": scores["fp32"].psnr, "images": scores["fp32"].images}, indent=1))


def _openvino_losses(folder: Path, samples: list, reference: PSNRByDegradation, threads: int | None) -> dict[str, object]:
    from ndr_edge.calibration.evaluate import psnr_per_degradation
    from ndr_edge.cpu import cpu_features
    from ndr_edge.runtime.openvino_backend import OpenVinoBackend, OpenVinoSettings

    hints = ["f32", "bf16"] if cpu_features().bf16 else ["f32"]
    runs = [("int8", h) for h in hints] + ([("fp32", "bf16")] if "bf16" in hints else [])
    out: dict[str, object] = {}
    for graph, hint in runs:
        path = folder / f"model-{graph}.onnx"
        with OpenVinoBackend(path, OpenVinoSettings(precision_hint=hint, threads=threads)) as backend:
            score = psnr_per_degradation(backend.infer, samples, backend.meta.channel_order, backend.meta.size_multiple,
                                         False, desc=f"{path.name} openvino {hint}")
        out[f"loss_db_{graph}_openvino_{hint}"] = score.loss_against(reference)
    return out


if __name__ == "__main__":
    main()
